import { describe, expect, it } from "vitest";
import { ISTIO_KINDS } from "./istio-kinds.js";

describe("the Istio kinds read from a cluster", () => {
  it("use the resource names of Istio's CRDs", () => {
    expect(ISTIO_KINDS.map((k) => `${k.plural}.${k.group}`)).toEqual([
      "serviceentries.networking.istio.io",
      "workloadentries.networking.istio.io",
      "virtualservices.networking.istio.io",
      "destinationrules.networking.istio.io",
      "gateways.networking.istio.io",
      "sidecars.networking.istio.io",
      "envoyfilters.networking.istio.io",
      "peerauthentications.security.istio.io",
      "authorizationpolicies.security.istio.io",
      "requestauthentications.security.istio.io",
      "telemetries.telemetry.istio.io",
    ]);
    expect(ISTIO_KINDS.find((k) => k.kind === "Telemetry")?.versions).toEqual(["v1", "v1alpha1"]);
    expect(ISTIO_KINDS.find((k) => k.kind === "VirtualService")?.versions).toEqual(["v1", "v1beta1", "v1alpha3"]);
    expect(ISTIO_KINDS.find((k) => k.kind === "AuthorizationPolicy")?.versions).toEqual(["v1", "v1beta1"]);
  });
});
