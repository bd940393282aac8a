// The tables under the graph: traffic per edge, proxies with their sync state and Envoy's NACK
// text, certificates with their expiry, config problems. Every cell is text (textContent): names
// and messages come from clients and files.
import type { ConsoleState } from "../../src/admin/console-state.js";
import { duration, millis, percent, rate } from "./format.js";

/** A certificate is shown as expiring below this many seconds left. */
const EXPIRING_SECONDS = 3600;

function row(cells: (string | { text: string; className?: string })[], attrs: Record<string, string> = {}): HTMLTableRowElement {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  for (const c of cells) {
    const td = document.createElement("td");
    if (typeof c === "string") td.textContent = c;
    else {
      td.textContent = c.text;
      if (c.className) td.className = c.className;
    }
    tr.append(td);
  }
  return tr;
}

/** A row whose one cell spans the table. */
function wide(tr: HTMLTableRowElement): HTMLTableRowElement {
  (tr.firstElementChild as HTMLTableCellElement).colSpan = 5;
  return tr;
}

function fill(id: string, rows: HTMLElement[]): void {
  document.querySelector(`#${id} tbody, ul#${id}`)!.replaceChildren(...rows);
}

export function renderTables(state: ConsoleState): void {
  const label = new Map(state.nodes.map((n) => [n.id, n.kind === "service" ? `${n.label} (service)` : n.label]));
  document.getElementById("window")!.textContent = state.metrics.source === "none" ? "" : `(last ${state.metrics.windowSeconds} s, from the clients' Envoy stats)`;
  fill(
    "edges",
    state.edges.map((e) =>
      row(
        [
          label.get(e.source) ?? e.source,
          label.get(e.target) ?? e.target,
          e.cluster,
          { text: rate(e.rps), className: "num" },
          { text: `${percent(e.errorRate)}${e.localErrors ? ` (${e.localErrors} local)` : ""}`, className: "num rate" },
          { text: millis(e.p99Ms), className: "num" },
          e.mtls ? "mTLS" : "plaintext",
        ],
        { "data-edge-source": e.source, "data-edge-target": e.target, "data-health": e.health },
      ),
    ),
  );
  fill(
    "proxies",
    state.proxies.map((p) => {
      const nacks = p.types.filter((t) => t.nack && t.state === "ERROR");
      const tr = row(
        [
          `${p.workload}.${p.namespace}`,
          p.type,
          { text: p.state, className: `state ${p.state}` },
          p.types.map((t) => `${t.type} ${t.state}`).join(", "),
          { text: nacks.map((t) => `${t.type}: ${t.nack!.message}`).join("\n"), className: "nack" },
          p.certificate ? duration((Date.parse(p.certificate.notAfter) - Date.parse(state.generatedAt)) / 1000) : "–",
        ],
        { "data-proxy": p.nodeId, "data-state": p.state },
      );
      tr.title = p.nodeId + (p.stats?.error ? `\nstats ${p.stats.url}: ${p.stats.error}` : "");
      return tr;
    }),
  );
  fill(
    "certificates",
    state.certificates.security
      ? state.certificates.list.map((c) =>
          row([c.kind, c.subject, c.serial, c.notAfter, { text: duration(c.secondsLeft), className: c.secondsLeft < EXPIRING_SECONDS ? "expiring" : "" }], { "data-kind": c.kind }),
        )
      : [wide(row(["security is off (weft serve --security): no CA, no certificates"]))],
  );
  const p = state.problems;
  document.getElementById("problem-count")!.textContent = `(${p.errors} errors, ${p.warnings} warnings${p.omitted ? `, ${p.omitted} not listed` : ""})`;
  fill(
    "problems",
    p.problems.length
      ? p.problems.map((x) => {
          const li = document.createElement("li");
          li.className = x.severity;
          li.textContent = `${x.severity}: ${x.text}`;
          return li;
        })
      : [Object.assign(document.createElement("li"), { textContent: "none" })],
  );
}
