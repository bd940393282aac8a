import { describe, expect, it } from "vitest";
import { servicePortProtocol } from "./port-protocol.js";

describe("servicePortProtocol (Istio's rules)", () => {
  it("reads the port name's prefix, case-insensitively", () => {
    expect(servicePortProtocol({ name: "http" })).toBe("HTTP");
    expect(servicePortProtocol({ name: "http-web" })).toBe("HTTP");
    expect(servicePortProtocol({ name: "HTTP2-api" })).toBe("HTTP2");
    expect(servicePortProtocol({ name: "grpc" })).toBe("GRPC");
    expect(servicePortProtocol({ name: "https-admin" })).toBe("HTTPS");
    expect(servicePortProtocol({ name: "tls" })).toBe("TLS");
    expect(servicePortProtocol({ name: "tcp-db" })).toBe("TCP");
    expect(servicePortProtocol({ name: "mongo" })).toBe("MONGO");
  });

  it("grpc-web keeps its hyphen; mysql and redis are opaque TCP", () => {
    expect(servicePortProtocol({ name: "grpc-web" })).toBe("HTTP2");
    expect(servicePortProtocol({ name: "grpc-web-ui" })).toBe("HTTP2");
    expect(servicePortProtocol({ name: "mysql" })).toBe("TCP");
    expect(servicePortProtocol({ name: "redis-cache" })).toBe("TCP");
  });

  it("a prefix must be the whole first segment", () => {
    expect(servicePortProtocol({ name: "httpx" })).toBeUndefined();
    expect(servicePortProtocol({ name: "web-http" })).toBeUndefined();
    expect(servicePortProtocol({ name: "" })).toBeUndefined();
    expect(servicePortProtocol({})).toBeUndefined();
  });

  it("appProtocol wins over the name, including Kubernetes' own values", () => {
    expect(servicePortProtocol({ name: "http", appProtocol: "grpc" })).toBe("GRPC");
    expect(servicePortProtocol({ name: "db", appProtocol: "mysql" })).toBe("TCP");
    expect(servicePortProtocol({ name: "web", appProtocol: "kubernetes.io/h2c" })).toBe("HTTP2");
    expect(servicePortProtocol({ name: "web", appProtocol: "kubernetes.io/ws" })).toBe("HTTP");
    expect(servicePortProtocol({ name: "web", appProtocol: "kubernetes.io/wss" })).toBe("HTTPS");
  });

  it("an appProtocol Istio does not know falls back to the name", () => {
    expect(servicePortProtocol({ name: "http-x", appProtocol: "example.com/custom" })).toBe("HTTP");
  });

  it("UDP and SCTP ports are not proxied", () => {
    expect(servicePortProtocol({ name: "dns", protocol: "UDP" })).toBe("skip");
    expect(servicePortProtocol({ name: "http", protocol: "SCTP" })).toBe("skip");
  });
});
