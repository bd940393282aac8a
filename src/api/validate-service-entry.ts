// Schema and meaning checks for ServiceEntry and WorkloadEntry specs.
import { isIP } from "node:net";
import {
  CheckedObject,
  checkExportTo,
  checkLabelValues,
  checkProtocol,
  checkWorkloadSelector,
  describeValue,
  hostNameProblem,
  isIpOrCidr,
  isPortName,
  labelKeyProblem,
  PORT_NAME_RULE,
  type IssueCollector,
} from "./field-checks.js";

const SERVICE_ENTRY_FIELDS = ["hosts", "addresses", "ports", "location", "resolution", "endpoints", "workloadSelector", "exportTo", "subjectAltNames"] as const;
const SERVICE_PORT_FIELDS = ["number", "protocol", "name", "targetPort"] as const;
const WORKLOAD_ENTRY_FIELDS = ["address", "ports", "labels", "network", "locality", "weight", "serviceAccount"] as const;

const RESOLUTIONS = ["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"] as const;
const LOCATIONS = ["MESH_EXTERNAL", "MESH_INTERNAL"] as const;

export function checkServiceEntrySpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, SERVICE_ENTRY_FIELDS);
  if (!spec) return;

  const hosts =
    spec.require("hosts", "a list of host names") &&
    spec.stringList("hosts", {
      nonEmpty: true,
      itemDescription: "host names",
      checkItem: (h) => (h === "*" ? 'a ServiceEntry host cannot be "*" alone; name the hosts, e.g. "*.example.com"' : hostNameProblem(h, { wildcard: true })),
    });
  spec.stringList("addresses", {
    itemDescription: "IP addresses or CIDR blocks",
    checkItem: (a) => (isIpOrCidr(a) ? undefined : `expected an IP address or CIDR block such as "10.0.0.0/16", found ${describeValue(a)}`),
  });
  const portNames = checkServicePorts(spec);
  spec.enumValue("location", LOCATIONS);
  const resolution = spec.enumValue("resolution", RESOLUTIONS);
  checkExportTo(spec);
  spec.stringList("subjectAltNames");
  checkWorkloadSelector(spec, "labels", "it selects every workload of its namespace");

  let endpointCount = 0;
  const endpointsWithoutAddress: string[] = [];
  spec.list(
    "endpoints",
    (item, itemPath) => {
      endpointCount++;
      const endpoint = checkWorkloadEntryFields(c, item, itemPath, { resolution, portNames });
      if (endpoint && !endpoint.has("address")) endpointsWithoutAddress.push(itemPath);
    },
    { itemDescription: "endpoints" },
  );

  if (spec.has("endpoints") && spec.has("workloadSelector")) {
    c.error(path, "expected either endpoints or workloadSelector, found both; a ServiceEntry selects its endpoints one way");
  }
  if (resolution === "STATIC") {
    if (endpointCount === 0 && !spec.has("workloadSelector")) {
      c.error(spec.at("resolution"), "STATIC resolution needs endpoints with addresses or a workloadSelector, found neither");
    }
    for (const endpointPath of endpointsWithoutAddress) c.error(`${endpointPath}.address`, "required field is missing: STATIC resolution needs an IP address (or unix:// socket) for every endpoint");
  }
  // Istio's rules for each resolution (pkg/config/validation: ValidateServiceEntry).
  const addresses = Array.isArray(spec.value["addresses"]) ? (spec.value["addresses"] as unknown[]) : [];
  if (resolution !== undefined && resolution !== "NONE" && resolution !== "STATIC" && addresses.some((a) => typeof a === "string" && a.includes("/"))) {
    c.error(spec.at("addresses"), `CIDR addresses are allowed only with resolution NONE or STATIC, found resolution ${resolution}`);
  }
  if ((resolution ?? "NONE") === "NONE" && endpointCount > 0) {
    c.error(spec.at("endpoints"), "resolution NONE takes no endpoints (traffic goes to the address the client asked for); use STATIC or DNS to send it to these endpoints");
  }
  if (resolution === "DNS_ROUND_ROBIN" && endpointCount > 1) {
    c.error(spec.at("endpoints"), `resolution DNS_ROUND_ROBIN takes at most one endpoint, found ${endpointCount}; use DNS to resolve several`);
  }
  if ((resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") && endpointCount === 0 && Array.isArray(hosts)) {
    hosts.forEach((h, i) => {
      if (h.startsWith("*")) c.error(`${spec.at("hosts")}[${i}]`, `${resolution} resolution cannot resolve the wildcard host "${h}"; add endpoints or use resolution NONE`);
    });
  }
}

/** Checks spec.ports; returns the declared port names (for endpoint port checks). */
function checkServicePorts(spec: CheckedObject): Set<string> {
  const names = new Set<string>();
  const numbers = new Map<number, string>();
  spec.list(
    "ports",
    (item, path) => {
      const port = CheckedObject.of(spec.c, item, path, SERVICE_PORT_FIELDS);
      if (!port) return;
      const number = port.require("number", "a port number from 1 to 65535") ? port.port("number") : undefined;
      checkProtocol(port, "protocol", { allowEmpty: true });
      port.port("targetPort");
      const name = port.string("name");
      if (name !== undefined) {
        if (!isPortName(name)) spec.c.error(port.at("name"), `expected ${PORT_NAME_RULE}, found ${describeValue(name)}`);
        if (names.has(name)) spec.c.error(port.at("name"), `duplicate port name "${name}"; port names must be unique within a ServiceEntry`);
        names.add(name);
      }
      if (number !== undefined) {
        const earlier = numbers.get(number);
        if (earlier) spec.c.error(port.at("number"), `duplicate port number ${number}, also declared at ${earlier}`);
        else numbers.set(number, path);
      }
    },
    { itemDescription: "ports" },
  );
  return names;
}

export function checkWorkloadEntrySpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = checkWorkloadEntryFields(c, value, path, {});
  if (spec && !spec.has("address") && !spec.has("network")) {
    c.error(spec.at("address"), "required field is missing: expected the workload's IP address or host name (it may be left out only when network is set)");
  }
}

/**
 * The fields a WorkloadEntry and a ServiceEntry endpoint share. Inside a ServiceEntry the
 * resolution decides what an address may be, and endpoint port names must be declared ports.
 */
function checkWorkloadEntryFields(
  c: IssueCollector,
  value: unknown,
  path: string,
  context: { resolution?: (typeof RESOLUTIONS)[number] | undefined; portNames?: Set<string> },
): CheckedObject | undefined {
  const entry = CheckedObject.of(c, value, path, WORKLOAD_ENTRY_FIELDS);
  if (!entry) return undefined;
  const address = entry.string("address", { nonEmpty: true });
  if (address !== undefined && address.startsWith("unix://")) {
    const socket = address.slice("unix://".length);
    // As Istio: an absolute path, or "@name" for an abstract socket; never a directory.
    const ok = socket.startsWith("@") ? socket.length > 1 : socket.startsWith("/") && !socket.endsWith("/") && socket.length <= 107;
    if (!ok) c.error(entry.at("address"), `expected a unix:// socket with an absolute path ("unix:///var/run/app.sock") or an abstract name ("unix://@app"), found ${describeValue(address)}`);
    if (entry.has("ports")) c.error(entry.at("ports"), `a unix:// endpoint takes no ports (the socket is the destination)`);
  }
  if (address !== undefined) {
    const isSocket = address.startsWith("unix://");
    const isAddress = isIP(address) !== 0;
    if (context.resolution === "STATIC" && !isAddress && !isSocket) {
      c.error(entry.at("address"), `STATIC resolution needs an IP address or unix:// socket, found ${describeValue(address)}`);
    } else if (!isAddress && !isSocket && hostNameProblem(address, { wildcard: false })) {
      c.error(entry.at("address"), `expected an IP address, host name or unix:// socket, found ${describeValue(address)}`);
    }
  }
  entry.mapOf("ports", (port, portPath, name) => {
    if (!isPortName(name)) c.error(portPath, `expected a port name, ${PORT_NAME_RULE}; found ${describeValue(name)}`);
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      c.error(portPath, `expected a port number from 1 to 65535, found ${describeValue(port)}`);
    }
    if (context.portNames && !context.portNames.has(name)) {
      const declared = [...context.portNames];
      c.error(portPath, `the port name "${name}" is not declared in spec.ports (${declared.length ? `declared: ${declared.join(", ")}` : "no port names are declared"})`);
    }
  });
  checkLabelValues(entry, "labels", entry.stringMap("labels", { checkKey: labelKeyProblem }));
  entry.string("network");
  const locality = entry.string("locality");
  if (locality !== undefined) {
    const parts = locality.split("/");
    if (parts.length > 3 || parts.some((p) => p === "")) c.error(entry.at("locality"), `expected "region", "region/zone" or "region/zone/subzone", found ${describeValue(locality)}`);
  }
  entry.integer("weight", { min: 0, max: 4294967295 });
  entry.string("serviceAccount");
  return entry;
}
