// Schema and meaning checks for Gateway and Sidecar specs (listener-shaped resources).
import { PROTOCOL_NAMES } from "./port-protocols.js";
import { isIP } from "node:net";
import {
  CheckedObject,
  DNS_LABEL_RULE,
  checkWorkloadSelector,
  describeValue,
  hostNameProblem,
  isDnsLabel,
  labelKeyProblem,
  checkProtocol,
  isPortName,
  PORT_NAME_RULE,
  type IssueCollector,
} from "./field-checks.js";

const GATEWAY_FIELDS = ["servers", "selector"] as const;
const SERVER_FIELDS = ["port", "bind", "hosts", "tls", "name"] as const;
const PORT_FIELDS = ["number", "protocol", "name", "targetPort"] as const;
const SERVER_TLS_FIELDS = ["mode", "httpsRedirect", "serverCertificate", "privateKey", "caCertificates", "credentialName", "subjectAltNames", "minProtocolVersion", "maxProtocolVersion"] as const;
const SERVER_TLS_NOT_SUPPORTED = ["cipherSuites", "verifyCertificateSpki", "verifyCertificateHash", "caCrl", "credentialNames", "tlsCertificates"];
const SERVER_TLS_MODES = ["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"] as const;
const TLS_VERSIONS = ["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] as const;
const CAPTURE_MODES = ["DEFAULT", "IPTABLES", "NONE"] as const;
const OUTBOUND_MODES = ["ALLOW_ANY", "REGISTRY_ONLY"] as const;

// ---------------------------------------------------------------------------------------
// Gateway

export function checkGatewaySpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, GATEWAY_FIELDS);
  if (!spec) return;
  spec.stringMap("selector", { checkKey: labelKeyProblem });
  const portNames = new Map<string, string>();
  if (!spec.require("servers", "a list of servers (port, hosts)")) return;
  spec.list(
    "servers",
    (item, itemPath) => {
      const server = CheckedObject.of(c, item, itemPath, SERVER_FIELDS, ["defaultEndpoint"]);
      if (!server) return;
      const port = server.require("port", "a port with number and protocol") ? server.object("port", PORT_FIELDS) : undefined;
      let protocol: string | undefined;
      if (port) {
        if (port.require("number", "a port number from 1 to 65535")) port.port("number");
        if (port.require("protocol", `one of ${PROTOCOL_NAMES.join(", ")}`)) protocol = checkProtocol(port, "protocol", { allowEmpty: false })?.toUpperCase();
        port.port("targetPort");
        const name = port.string("name");
        if (name !== undefined) {
          const earlier = portNames.get(name);
          if (earlier) c.error(port.at("name"), `duplicate port name "${name}", already used at ${earlier}; port names must be unique across a Gateway's servers`);
          else portNames.set(name, port.path);
        }
      }
      if (server.require("hosts", 'a list of hosts such as "bookinfo.example.com" or "*"')) {
        server.stringList("hosts", { nonEmpty: true, itemDescription: "hosts", checkItem: gatewayHostProblem });
      }
      checkBind(server);
      server.string("name");
      checkServerTls(server, protocol);
    },
    { nonEmpty: true, itemDescription: "servers" },
  );
}

/** A Gateway server host: "host" or "namespace/host", where namespace may be "*" or ".". */
function gatewayHostProblem(value: string): string | undefined {
  const parts = value.split("/");
  if (parts.length > 2) return `expected "host" or "namespace/host", found ${describeValue(value)}`;
  const host = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const ns = parts[0]!;
    if (ns !== "*" && ns !== "." && !isDnsLabel(ns)) return `expected the namespace part of "${value}" to be "*", "." or a namespace name, found ${describeValue(ns)}`;
  }
  return hostNameProblem(host, { wildcard: true });
}

function checkServerTls(server: CheckedObject, protocol: string | undefined): void {
  const terminatesTls = protocol === "HTTPS" || protocol === "TLS";
  const tls = server.object("tls", SERVER_TLS_FIELDS, SERVER_TLS_NOT_SUPPORTED);
  if (!tls) {
    if (terminatesTls && !server.has("tls")) server.c.error(server.at("tls"), `required field is missing: ${protocol === "TLS" ? "a TLS" : "an HTTPS"} server needs tls settings (mode and certificate)`);
    return;
  }
  const mode = tls.enumValue("mode", SERVER_TLS_MODES);
  tls.boolean("httpsRedirect");
  for (const key of ["serverCertificate", "privateKey", "caCertificates", "credentialName"]) tls.string(key);
  tls.stringList("subjectAltNames");
  tls.enumValue("minProtocolVersion", TLS_VERSIONS);
  tls.enumValue("maxProtocolVersion", TLS_VERSIONS);

  const c = server.c;
  if (protocol !== undefined && !terminatesTls) {
    const set = Object.keys(tls.value).filter((k) => k !== "httpsRedirect");
    if (set.length > 0) c.error(tls.path, `a plain-text ${protocol} server may only set httpsRedirect in tls, found ${set.join(", ")}; use protocol HTTPS or TLS to serve TLS`);
    return;
  }
  if (mode === "SIMPLE" || mode === "MUTUAL" || mode === "OPTIONAL_MUTUAL") {
    if (!tls.has("credentialName") && !(tls.has("serverCertificate") && tls.has("privateKey"))) {
      c.error(tls.path, `${mode} mode needs a server certificate: set credentialName, or serverCertificate and privateKey`);
    }
    if (mode !== "SIMPLE" && !tls.has("credentialName") && !tls.has("caCertificates")) {
      c.error(tls.path, `${mode} mode verifies client certificates: set caCertificates (or credentialName)`);
    }
  }
  if (mode === "PASSTHROUGH" || mode === "AUTO_PASSTHROUGH") {
    // As Istio (a warning, for backwards compatibility): passthrough never terminates TLS.
    const set = ["serverCertificate", "privateKey", "caCertificates", "credentialName"].filter((k) => tls.has(k));
    if (set.length > 0) c.warning(tls.path, `${mode} mode does not use certificates (the TLS passes through to the destination); ${set.join(", ")} ignored`);
  }
  if (mode === "ISTIO_MUTUAL") {
    const set = ["serverCertificate", "privateKey", "caCertificates", "credentialName"].filter((k) => tls.has(k));
    if (set.length > 0) c.error(tls.path, `ISTIO_MUTUAL uses the mesh's own certificates; remove ${set.join(", ")}`);
  }
}

/** bind: an IP address or a unix:// socket path. */
function checkBind(parent: CheckedObject): void {
  const bind = parent.string("bind");
  if (bind !== undefined && isIP(bind) === 0 && !bind.startsWith("unix://")) {
    parent.c.error(parent.at("bind"), `expected an IP address or unix:// socket, found ${describeValue(bind)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Sidecar

export function checkSidecarSpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, ["workloadSelector", "ingress", "egress", "outboundTrafficPolicy"], ["inboundConnectionPool"]);
  if (!spec) return;
  checkWorkloadSelector(spec, "labels", "this Sidecar applies to every workload of its namespace");

  spec.list(
    "ingress",
    (item, itemPath) => {
      const listener = CheckedObject.of(c, item, itemPath, ["port", "bind", "defaultEndpoint"], ["captureMode", "tls", "connectionPool"]);
      if (!listener) return;
      if (listener.require("port", "a port with number and protocol")) checkListenerPort(listener);
      checkBind(listener);
      const endpoint = listener.string("defaultEndpoint");
      if (endpoint !== undefined && !/^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):\d{1,5}$/.test(endpoint) && !endpoint.startsWith("unix://")) {
        c.error(listener.at("defaultEndpoint"), `expected "127.0.0.1:PORT", "0.0.0.0:PORT", "[::1]:PORT", "[::]:PORT" or "unix://path", found ${describeValue(endpoint)}`);
      }
      // Checked as Istio checks it, but not applied: say so rather than ignore it silently.
      c.warning(itemPath, "Sidecar ingress listeners are not supported yet by Weft: its inbound listeners come from the ports of the services that select the workload; this listener (port, bind, defaultEndpoint) is ignored");
    },
    { itemDescription: "ingress listeners" },
  );

  const egress = spec.list(
    "egress",
    (item, itemPath) => {
      const listener = CheckedObject.of(c, item, itemPath, ["port", "bind", "captureMode", "hosts"]);
      if (!listener) return;
      if (listener.has("port")) checkListenerPort(listener);
      checkBind(listener);
      listener.enumValue("captureMode", CAPTURE_MODES);
      const ignored = ["port", "bind", "captureMode"].filter((k) => listener.has(k));
      if (ignored.length > 0) {
        c.warning(itemPath, `egress ${ignored.join(", ")} ${ignored.length === 1 ? "is" : "are"} not supported yet by Weft: the hosts of every egress listener apply to every port; ${ignored.join(", ")} ignored`);
      }
      if (listener.require("hosts", 'a list of "namespace/host" entries such as "./*" or "istio-system/*"')) {
        listener.stringList("hosts", { nonEmpty: true, itemDescription: "hosts", checkItem: egressHostProblem });
      }
    },
    { itemDescription: "egress listeners" },
  );
  egress?.forEach((listener, index) => {
    const hasPort = typeof listener === "object" && listener !== null && "port" in listener;
    if (!hasPort && index !== egress.length - 1) {
      c.error(`${spec.at("egress")}[${index}]`, "an egress listener without a port catches all other ports, so it must be the last one in the list");
    }
  });

  if (!["ingress", "egress", "outboundTrafficPolicy", "inboundConnectionPool"].some((k) => spec.has(k))) {
    c.error(path, "an empty Sidecar configures nothing: give it egress, ingress or outboundTrafficPolicy (Istio refuses an empty Sidecar too)");
  }
  const outbound = spec.object("outboundTrafficPolicy", ["mode"], ["egressProxy"]);
  if (outbound && outbound.require("mode", OUTBOUND_MODES.join(" or "))) outbound.enumValue("mode", OUTBOUND_MODES);
}

function checkListenerPort(listener: CheckedObject): void {
  const port = listener.object("port", ["number", "protocol", "name"]);
  if (!port) return;
  if (port.require("number", "a port number from 1 to 65535")) port.port("number");
  checkProtocol(port, "protocol", { allowEmpty: false });
  const name = port.string("name");
  if (name !== undefined && !isPortName(name)) listener.c.error(port.at("name"), `expected ${PORT_NAME_RULE}, found ${describeValue(name)}`);
}

/** A Sidecar egress host: "namespace/dnsName", namespace "*", "." or "~" or a name. */
function egressHostProblem(value: string): string | undefined {
  const parts = value.split("/");
  if (parts.length !== 2) return `expected "namespace/host" such as "./*" or "istio-system/*", found ${describeValue(value)}`;
  const [ns, host] = parts as [string, string];
  if (ns !== "*" && ns !== "." && ns !== "~" && !isDnsLabel(ns)) return `expected the namespace part of "${value}" to be "*", ".", "~" or a namespace name, found ${describeValue(ns)}`;
  return hostNameProblem(host, { wildcard: true });
}
