// The attribute keys an AuthorizationPolicy `when` condition may name (Istio's "Authorization
// Policy Conditions" reference), parsed once here for the validator and the translator.

/** A parsed `when` key. */
export type ConditionKey =
  | { kind: "request.headers"; header: string } // request.headers[User-Agent]
  | { kind: "request.auth.claims"; claim: string[] } // request.auth.claims[groups], nested: [a][b]
  | {
      kind:
        | "source.ip"
        | "remote.ip"
        | "source.namespace"
        | "source.principal"
        | "source.trustDomain"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "destination.ip"
        | "destination.port"
        | "connection.sni";
    };

const PLAIN_KEYS = [
  "source.ip",
  "remote.ip",
  "source.namespace",
  "source.principal",
  "source.trustDomain",
  "request.auth.principal",
  "request.auth.audiences",
  "request.auth.presenter",
  "destination.ip",
  "destination.port",
  "connection.sni",
] as const;

/** Every supported key, as written in messages. */
export const CONDITION_KEY_NAMES: readonly string[] = ["request.headers[<name>]", ...PLAIN_KEYS, "request.auth.claims[<name>]"];

/** Keys whose value only exists for HTTP requests (Istio: "HTTP only"). */
export function isHttpOnlyCondition(key: ConditionKey): boolean {
  return key.kind.startsWith("request.");
}

/** Parses a `when` key; undefined when it is not one Weft supports. */
export function parseConditionKey(key: string): ConditionKey | undefined {
  if ((PLAIN_KEYS as readonly string[]).includes(key)) return { kind: key as (typeof PLAIN_KEYS)[number] };
  const header = /^request\.headers\[([^\[\]]+)\]$/.exec(key);
  if (header) return { kind: "request.headers", header: header[1]! };
  const claims = /^request\.auth\.claims((?:\[[^\[\]]+\])+)$/.exec(key);
  if (claims) return { kind: "request.auth.claims", claim: [...claims[1]!.matchAll(/\[([^\[\]]+)\]/g)].map((m) => m[1]!) };
  return undefined;
}
