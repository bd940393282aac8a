// ServiceAccount tokens that live less than the API server's minimum (TokenRequest refuses
// expirationSeconds < 600), for tests of expiry and rotation within test time: a real
// TokenRequest token with its claims kept (issuer, audience, kubernetes.io: namespace,
// ServiceAccount and pod with their uids) and only iat/nbf/exp changed, signed again with the
// test cluster's own service-account key (ES256, certificates.ts). The API server verifies it
// exactly as any token it issued.
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";

/** `token` with iat = nbf = now + shiftSeconds and exp = iat + lifetimeSeconds, re-signed with `keyFile`. */
export function withLifetime(token: string, keyFile: string, lifetimeSeconds: number, shiftSeconds = 0): string {
  const [header, payload] = token.split(".");
  if (!header || !payload) throw new Error("withLifetime: not a JWT");
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000) + shiftSeconds;
  const body = Buffer.from(JSON.stringify({ ...claims, iat: now, nbf: now, exp: now + lifetimeSeconds })).toString("base64url");
  const signingInput = `${header}.${body}`;
  const signature = sign("sha256", Buffer.from(signingInput), { key: createPrivateKey(readFileSync(keyFile)), dsaEncoding: "ieee-p1363" });
  return `${signingInput}.${signature.toString("base64url")}`;
}
