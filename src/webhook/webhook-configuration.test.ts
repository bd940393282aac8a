import { describe, expect, it } from "vitest";
import { configurationCurrent, desiredWebhookConfiguration, type WebhookConfiguration } from "./webhook-configuration.js";

const PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

/** What the apiserver stores for an applied configuration: defaults filled in. */
function asStored(c: WebhookConfiguration): WebhookConfiguration {
  const copy = structuredClone(c);
  for (const w of copy.webhooks ?? []) {
    w.namespaceSelector ??= {};
    w.objectSelector ??= {};
  }
  return copy;
}

describe("configurationCurrent", () => {
  const desired = desiredWebhookConfiguration({ target: { url: "https://127.0.0.1:15017/validate" }, caBundlePem: PEM });

  it("a stored configuration with the apiserver's defaults (empty selectors) is current: no rewrite at every check", () => {
    expect(configurationCurrent(asStored(desired), desired)).toBe(true);
  });

  it("a changed caBundle, timeout or selector is not current", () => {
    const other = desiredWebhookConfiguration({ target: { url: "https://127.0.0.1:15017/validate" }, caBundlePem: PEM.replace("AAAA", "BBBB") });
    expect(configurationCurrent(asStored(other), desired)).toBe(false);
    const slow = asStored(desired);
    slow.webhooks![0]!.timeoutSeconds = 30;
    expect(configurationCurrent(slow, desired)).toBe(false);
    const narrowed = asStored(desired);
    narrowed.webhooks![0]!.namespaceSelector = { matchLabels: { team: "a" } };
    expect(configurationCurrent(narrowed, desired)).toBe(false);
    expect(configurationCurrent(undefined, desired)).toBe(false);
  });
});
