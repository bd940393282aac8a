// Schema and meaning checks for Gateway and Sidecar specs (listener-shaped resources).
import { PROTOCOL_NAMES, servedProtocol } from "./port-protocols.js";
import { checkConnectionPool } from "./validate-destination-rule.js";
import { isIP } from "node:net";
import {
  CheckedObject,
  DNS_LABEL_RULE,
  checkWorkloadSelector,
  describeValue,
  hostNameProblem,
  isDnsLabel,
  isMapping,
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
  const spec = CheckedObject.of(c, value, path, ["workloadSelector", "ingress", "egress", "outboundTrafficPolicy", "inboundConnectionPool"]);
  if (!spec) return;
  checkWorkloadSelector(spec, "labels", "this Sidecar applies to every workload of its namespace");

  const ingressPorts = new Map<number, string>();
  spec.list(
    "ingress",
    (item, itemPath) => {
      const listener = CheckedObject.of(c, item, itemPath, ["port", "bind", "defaultEndpoint", "captureMode", "tls", "connectionPool"]);
      if (!listener) return;
      const port = listener.require("port", "a port with number and protocol") ? checkListenerPort(listener, { unixBind: false }) : undefined;
      if (port?.number !== undefined) {
        const earlier = ingressPorts.get(port.number);
        if (earlier) c.error(listener.at("port"), `port ${port.number} is already used by ${earlier}: ports of ingress listeners must be unique`);
        else ingressPorts.set(port.number, itemPath);
      }
      // As Istio: an ingress listener binds to an IP address only (unix sockets are for egress).
      const bind = listener.string("bind");
      if (bind !== undefined && isIP(bind) === 0) c.error(listener.at("bind"), `expected an IP address, found ${describeValue(bind)}`);
      listener.enumValue("captureMode", CAPTURE_MODES);
      checkDefaultEndpoint(listener);
      checkIngressTls(listener, port?.protocol);
      checkConnectionPool(listener);
      const protocol = port?.protocol;
      if (listener.has("connectionPool") && protocol !== undefined && !isHttpPortProtocol(protocol) && isMapping(listener.value["connectionPool"]) && (listener.value["connectionPool"] as Record<string, unknown>)["http"] !== undefined) {
        c.warning(listener.at("connectionPool.http"), `HTTP connection pool settings on port ${port!.number} whose protocol ${protocol} is not HTTP: only the tcp settings apply (as in Istio)`);
      }
    },
    { itemDescription: "ingress listeners" },
  );

  const egressPorts = new Map<string, string>();
  const egress = spec.list(
    "egress",
    (item, itemPath) => {
      const listener = CheckedObject.of(c, item, itemPath, ["port", "bind", "captureMode", "hosts"]);
      if (!listener) return;
      const port = listener.has("port") ? checkListenerPort(listener, { unixBind: true }) : undefined;
      const bind = listener.string("bind");
      const mode = listener.enumValue("captureMode", CAPTURE_MODES);
      if (port?.number === 0) {
        // As Istio: port 0 means a unix domain socket listener.
        if (bind === undefined || !bind.startsWith("unix://")) c.error(listener.at("bind"), "a listener with port 0 listens on a unix domain socket: set bind to unix:///path (or unix://@name)");
        else if (!unixPathOk(bind)) c.error(listener.at("bind"), `expected unix:///absolute/path or unix://@abstract-name, found ${describeValue(bind)}`);
        if (mode === "IPTABLES") c.error(listener.at("captureMode"), "a unix domain socket listener cannot be captured by iptables: use DEFAULT or NONE");
      } else if (bind !== undefined && isIP(bind) === 0) {
        c.error(listener.at("bind"), bind.startsWith("unix://") ? "a unix:// bind needs port number 0" : `expected an IP address, found ${describeValue(bind)}`);
      }
      if (port?.number !== undefined) {
        const key = port.number === 0 ? `unix ${bind}` : `port ${port.number}`;
        const earlier = egressPorts.get(key);
        if (earlier) c.error(listener.at("port"), `${key} is already used by ${earlier}: egress listeners must not share a port or a unix socket`);
        else egressPorts.set(key, itemPath);
      }
      if (port?.number === 0 && bind?.startsWith("unix://")) {
        c.warning(itemPath, "egress listeners on a unix domain socket are not supported yet by Weft: this listener is ignored (its hosts stay visible through the other listeners' ports)");
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
  checkConnectionPool(spec, "inboundConnectionPool");
  const outbound = spec.object("outboundTrafficPolicy", ["mode"], ["egressProxy"]);
  if (outbound && outbound.require("mode", OUTBOUND_MODES.join(" or "))) outbound.enumValue("mode", OUTBOUND_MODES);
}

function isHttpPortProtocol(protocol: string): boolean {
  const served = servedProtocol(protocol);
  return served === "HTTP" || served === "HTTP2" || served === "GRPC";
}

/** unix:///absolute/path or unix://@abstract (Linux abstract namespace), as Istio's ValidateUnixAddress. */
function unixPathOk(address: string): boolean {
  const rest = address.slice("unix://".length);
  return rest.length > 1 && rest.length <= 107 && (rest.startsWith("/") || rest.startsWith("@")) && !rest.includes("\0");
}

/**
 * defaultEndpoint, as Istio: "127.0.0.1:PORT" or "[::1]:PORT" (the app on loopback),
 * "0.0.0.0:PORT" or "[::]:PORT" (the app on the workload's own address), "unix://path", or unset.
 */
function checkDefaultEndpoint(listener: CheckedObject): void {
  const endpoint = listener.string("defaultEndpoint");
  if (endpoint === undefined || endpoint === "") return;
  const at = listener.at("defaultEndpoint");
  if (endpoint.startsWith("unix://")) {
    if (!unixPathOk(endpoint)) listener.c.error(at, `expected unix:///absolute/path or unix://@abstract-name, found ${describeValue(endpoint)}`);
    return;
  }
  const m = /^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):(\d{1,5})$/.exec(endpoint);
  if (!m) {
    listener.c.error(at, `expected "127.0.0.1:PORT", "0.0.0.0:PORT", "[::1]:PORT", "[::]:PORT" or "unix://path", found ${describeValue(endpoint)}`);
    return;
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) listener.c.error(at, `expected a port number from 1 to 65535 after the address, found ${m[2]}`);
}

/**
 * An ingress listener's tls (TLS terminated by the sidecar for callers from outside the mesh),
 * refused where Istio refuses it: only SIMPLE / MUTUAL / OPTIONAL_MUTUAL with certificate files,
 * on HTTPS or TLS ports.
 */
function checkIngressTls(listener: CheckedObject, protocol: string | undefined): void {
  const tls = listener.object("tls", [...SERVER_TLS_FIELDS, "credentialNames", "tlsCertificates"], ["cipherSuites", "verifyCertificateSpki", "verifyCertificateHash", "caCrl"]);
  if (!tls) return;
  const c = listener.c;
  const mode = tls.enumValue("mode", SERVER_TLS_MODES);
  for (const key of ["serverCertificate", "privateKey", "caCertificates"]) tls.string(key);
  tls.enumValue("minProtocolVersion", TLS_VERSIONS);
  tls.enumValue("maxProtocolVersion", TLS_VERSIONS);
  const refused: [string, string][] = [
    ["subjectAltNames", "subjectAltNames is not supported in a Sidecar ingress listener's tls (as in Istio)"],
    ["httpsRedirect", "httpsRedirect is not supported in a Sidecar ingress listener's tls (as in Istio)"],
    ["credentialName", "credentialName is not supported in a Sidecar ingress listener's tls (as in Istio): use serverCertificate and privateKey files"],
    ["credentialNames", "credentialNames is not supported in a Sidecar ingress listener's tls (as in Istio)"],
    ["tlsCertificates", "tlsCertificates is not supported in a Sidecar ingress listener's tls (as in Istio)"],
  ];
  for (const [key, message] of refused) if (tls.has(key) && tls.value[key] !== false) c.error(tls.at(key), message);
  if (mode === "ISTIO_MUTUAL" || mode === "AUTO_PASSTHROUGH") c.error(tls.at("mode"), `${mode} cannot be used in a Sidecar ingress listener's tls: use SIMPLE or MUTUAL (mesh mTLS comes from PeerAuthentication)`);
  if (protocol !== undefined && !["HTTPS", "TLS"].includes(protocol.toUpperCase())) {
    c.error(tls.path, `TLS settings need port protocol HTTPS or TLS, found ${describeValue(protocol)}`);
  }
  if (mode === "SIMPLE" || mode === "MUTUAL" || mode === "OPTIONAL_MUTUAL") {
    if (!(tls.has("serverCertificate") && tls.has("privateKey"))) c.error(tls.path, `${mode} mode needs a server certificate: set serverCertificate and privateKey`);
    if (mode !== "SIMPLE" && !tls.has("caCertificates")) c.error(tls.path, `${mode} mode verifies client certificates: set caCertificates`);
  }
  if (mode === "PASSTHROUGH") c.warning(tls.at("mode"), "PASSTHROUGH does not terminate TLS: the connection goes to the app as it came; the tls settings are ignored");
}

/** A Sidecar listener's port; `unixBind`: number 0 allowed (egress listeners on a unix socket). */
function checkListenerPort(listener: CheckedObject, opts: { unixBind: boolean }): { number?: number; protocol?: string } | undefined {
  const port = listener.object("port", ["number", "protocol", "name", "targetPort"]);
  if (!port) return undefined;
  let number: number | undefined;
  if (port.require("number", opts.unixBind ? "a port number from 1 to 65535 (0 with a unix:// bind)" : "a port number from 1 to 65535")) {
    number = opts.unixBind && port.value["number"] === 0 ? 0 : port.port("number");
  }
  // As Istio: a Sidecar port's protocol is not detected, it must be named.
  const protocol = port.require("protocol", `one of ${PROTOCOL_NAMES.join(", ")}`) ? checkProtocol(port, "protocol", { allowEmpty: false }) : undefined;
  const name = port.string("name");
  if (name !== undefined && !isPortName(name)) listener.c.error(port.at("name"), `expected ${PORT_NAME_RULE}, found ${describeValue(name)}`);
  if (port.has("targetPort")) listener.c.error(port.at("targetPort"), "targetPort has no effect on Sidecar listeners (Istio refuses it): remove it; an ingress listener sends to its defaultEndpoint");
  return { number, protocol };
}

/** A Sidecar egress host: "namespace/dnsName", namespace "*", "." or "~" or a name. */
function egressHostProblem(value: string): string | undefined {
  const parts = value.split("/");
  if (parts.length !== 2) return `expected "namespace/host" such as "./*" or "istio-system/*", found ${describeValue(value)}`;
  const [ns, host] = parts as [string, string];
  if (ns !== "*" && ns !== "." && ns !== "~" && !isDnsLabel(ns)) return `expected the namespace part of "${value}" to be "*", ".", "~" or a namespace name, found ${describeValue(ns)}`;
  return hostNameProblem(host, { wildcard: true });
}
