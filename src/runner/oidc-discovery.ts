// OpenID Connect discovery for RequestAuthentication jwtRules that give neither jwks nor jwksUri,
// as istiod does: the control plane fetches <issuer>/.well-known/openid-configuration and reads
// its jwks_uri; the rule then goes to the translator with that jwksUri (Envoy fetches the keys
// through jwt.ts's jwks cluster, as for a jwksUri written by hand). Owned by the mesh runner
// (one per control plane; close() stops its timer).
//
// Bounds: at most MAX_ISSUERS issuers, a response of at most MAX_RESPONSE_BYTES, TIMEOUT_MS per
// fetch, http(s) only. Results are refreshed every refreshMs (Istio's default 20 min; a failed
// refresh keeps the jwks_uri found before); a failed first discovery is retried at each refresh,
// and in the meantime the rule gets an unusable key set,
// which is Istio's behaviour: a request with a token of that issuer is refused (401), one without
// a token passes (an AuthorizationPolicy decides), and the policy carries a warning saying why.
import type { MeshConfig, ValidationIssue } from "../api/types.js";
import type { JwtRule, RequestAuthentication } from "../api/security/types.js";
import type { Logger } from "../log/logger.js";
import { truncateText } from "../log/bounded-text.js";

export const MAX_ISSUERS = 256;
export const MAX_RESPONSE_BYTES = 256 * 1024;
export const TIMEOUT_MS = 5000;
export const DEFAULT_REFRESH_MS = 20 * 60_000;

/** A key set no token verifies against (a throw-away RSA public key): what a rule gets while its issuer's keys are unknown. */
export const UNUSABLE_JWKS = JSON.stringify({ keys: [{ kty: "RSA", e: "AQAB", n: "0L7lFx0Eq1QJXFwLqmLFADRHJTHHG0QJgRBRA_d8LJSK0KicflcDq8TFMX1l0xtYNZ-8dwk-vgZ_y5b-mawSikbgbNBPaWrcavkM0Je3sqIqbXfEDhLlSWYUkPE_Pcju9nSNtBHLNObUjl-UxMXFa7qWPdUCDN7YWba9TR3vYiHhhdyCnEzajH6HGVv06yBZHmsoPPft2-P9SWHkeyCuqpcA8u0NtVbnhOzsD1rMULyKBvDhmqPpuwBO3HIBDKwpniS7HSsIFDs1eM9HzS2nTixAmGbxkzuGDHLSexXCC_acNtdpgZW0pZT48Zw53bkS9nUJ1fcpK3HJsA7rRrHAGQ", kid: "weft-oidc-discovery-failed", alg: "RS256", use: "sig" }] });

type Discovered = { jwksUri: string } | { error: string };

export interface OidcDiscoveryOptions {
  logger: Pick<Logger, "warn" | "info">;
  /** Called when a refresh changed what an issuer resolves to (the runner re-applies its config). */
  onChange: () => void;
  refreshMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** The discovery document URL of an issuer (Istio and the OIDC spec: issuer + "/.well-known/openid-configuration"). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
}

function needsDiscovery(rule: JwtRule): boolean {
  return rule.jwks === undefined && rule.jwksUri === undefined;
}

function requestAuthentications(config: Pick<MeshConfig, "resources">) {
  return config.resources.filter((r) => r.resource.kind === "RequestAuthentication") as unknown as { resource: RequestAuthentication; source: MeshConfig["resources"][number]["source"] }[];
}

export class OidcDiscovery {
  private readonly results = new Map<string, Discovered>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: OidcDiscoveryOptions) {
    this.timer = setInterval(() => void this.refresh(), opts.refreshMs ?? DEFAULT_REFRESH_MS);
    this.timer.unref();
  }

  /** The issuers of a config whose keys need discovery (sorted, at most MAX_ISSUERS). */
  issuersOf(config: Pick<MeshConfig, "resources">): string[] {
    const issuers = new Set<string>();
    for (const { resource } of requestAuthentications(config)) for (const rule of resource.spec.jwtRules ?? []) if (needsDiscovery(rule)) issuers.add(rule.issuer);
    return [...issuers].sort().slice(0, MAX_ISSUERS);
  }

  /** Discovers the issuers of a config not discovered yet (all at once, each bounded by the timeout). */
  async prepare(config: Pick<MeshConfig, "resources">): Promise<void> {
    const missing = this.issuersOf(config).filter((i) => !this.results.has(i));
    await Promise.all(missing.map(async (issuer) => this.results.set(issuer, await this.discover(issuer))));
    // Forget issuers no rule names any more (bounded by what configs name).
    const named = new Set(this.issuersOf(config));
    for (const issuer of [...this.results.keys()]) if (!named.has(issuer)) this.results.delete(issuer);
  }

  /**
   * The config with every rule that needs discovery given its discovered jwksUri (or the
   * unusable key set), and a warning per rule whose issuer could not be discovered.
   */
  apply(config: MeshConfig): { config: MeshConfig; issues: ValidationIssue[] } {
    const issues: ValidationIssue[] = [];
    let changed = false;
    const resources = config.resources.map((entry) => {
      if (entry.resource.kind !== "RequestAuthentication") return entry;
      const ra = entry.resource as unknown as RequestAuthentication;
      const rules = ra.spec.jwtRules ?? [];
      if (!rules.some(needsDiscovery)) return entry;
      changed = true;
      const jwtRules = rules.map((rule, i) => {
        if (!needsDiscovery(rule)) return rule;
        const found = this.results.get(rule.issuer) ?? { error: `more than ${MAX_ISSUERS} issuers need discovery; this one was not tried` };
        if ("jwksUri" in found) return { ...rule, jwksUri: found.jwksUri };
        issues.push({ ...entry.source, resource: `RequestAuthentication/${ra.metadata.namespace ?? "default"}/${ra.metadata.name}`, field: `spec.jwtRules[${i}].issuer`, severity: "warning", message: `OpenID Connect discovery of ${JSON.stringify(rule.issuer)} failed: ${found.error}; tokens of this issuer are refused (401) until it succeeds (retried every ${Math.round((this.opts.refreshMs ?? DEFAULT_REFRESH_MS) / 1000)} s); set jwksUri or jwks to skip discovery` });
        return { ...rule, jwks: UNUSABLE_JWKS };
      });
      return { ...entry, resource: { ...ra, spec: { ...ra.spec, jwtRules } } as unknown as typeof entry.resource };
    });
    return { config: changed ? { ...config, resources } : config, issues };
  }

  /** Re-discovers every known issuer; calls onChange when a result changed. */
  async refresh(): Promise<void> {
    let changed = false;
    await Promise.all(
      [...this.results.keys()].map(async (issuer) => {
        const next = await this.discover(issuer);
        if (this.closed) return;
        // As istiod: a failed refresh keeps what was found before (the keys URL rarely moves).
        if ("error" in next && "jwksUri" in (this.results.get(issuer) ?? {})) return;
        if (JSON.stringify(next) !== JSON.stringify(this.results.get(issuer))) changed = true;
        this.results.set(issuer, next);
      }),
    );
    if (changed && !this.closed) this.opts.onChange();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private async discover(issuer: string): Promise<Discovered> {
    const url = discoveryUrl(issuer);
    try {
      const res = await (this.opts.fetch ?? fetch)(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? TIMEOUT_MS), redirect: "error", headers: { accept: "application/json" } });
      if (res.status !== 200) throw new Error(`GET ${url} answered HTTP ${res.status}`);
      const text = await readBounded(res, MAX_RESPONSE_BYTES);
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        throw new Error(`GET ${url}: not JSON`);
      }
      const jwksUri = typeof doc === "object" && doc !== null ? (doc as Record<string, unknown>)["jwks_uri"] : undefined;
      if (typeof jwksUri !== "string") throw new Error(`GET ${url}: the document has no jwks_uri string`);
      const parsed = new URL(jwksUri);
      if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new Error(`GET ${url}: jwks_uri ${truncateText(jwksUri, 200)} is not an http(s) URL`);
      this.opts.logger.info({ issuer, jwksUri }, "OIDC discovery: found the issuer's jwks_uri");
      return { jwksUri };
    } catch (err) {
      const error = truncateText((err as Error).name === "TimeoutError" ? `GET ${url}: no answer within ${this.opts.timeoutMs ?? TIMEOUT_MS} ms` : (err as Error).message, 500);
      this.opts.logger.warn({ issuer, error }, "OIDC discovery failed");
      return { error };
    }
  }
}

/** The body as text, refusing more than maxBytes (the connection is dropped, not drained). */
async function readBounded(res: Response, maxBytes: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`the discovery document is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
