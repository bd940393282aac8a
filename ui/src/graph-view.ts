// The mesh as a graph (cytoscape): services are boxes around their workloads, gateways diamonds;
// edges coloured by 5xx share (red at ERROR_RATE_RED), solid when mutual TLS, dashed when
// plaintext, labelled with rate, 5xx share and p99. The layout is computed again only when the set
// of nodes or edges changes; otherwise data is updated in place, so the picture stays still.
import cytoscape, { type Core, type ElementDefinition } from "cytoscape";
import type { ConsoleState, GraphEdge } from "../../src/admin/console-state.js";
import { millis, percent, rate } from "./format.js";

export const HEALTH_COLOURS: Record<GraphEdge["health"], string> = {
  error: "#d62728",
  degraded: "#ff7f0e",
  healthy: "#2ca02c",
  idle: "#9e9e9e",
  unknown: "#9e9e9e",
};
const SYNC_BORDER: Record<string, string> = { NACKED: "#d62728", STALE: "#ff7f0e", SYNCED: "#4b5563", NOT_SENT: "#9e9e9e" };

function edgeLabel(e: GraphEdge): string {
  if (e.rps === undefined) return e.mtls ? "mTLS" : "";
  return `${rate(e.rps)} rps · ${percent(e.errorRate)} · p99 ${millis(e.p99Ms)}${e.mtls ? " · mTLS" : ""}`;
}

export class MeshGraphView {
  readonly cy: Core;
  private shape = "";

  constructor(container: HTMLElement) {
    this.cy = cytoscape({
      container,
      wheelSensitivity: 0.3,
      style: [
        {
          selector: "node",
          style: {
            label: "data(label)",
            "font-size": 11,
            "text-valign": "bottom",
            "text-margin-y": 4,
            shape: "round-rectangle",
            width: 34,
            height: 34,
            "background-color": "#e0e7ff",
            "border-width": 2,
            "border-color": "data(border)",
          },
        },
        { selector: 'node[kind = "gateway"]', style: { shape: "diamond", "background-color": "#fde68a" } },
        {
          selector: ":parent",
          style: { shape: "round-rectangle", "background-color": "#f1f5f9", "border-color": "#cbd5e1", "border-width": 1, "text-valign": "top", "font-weight": "bold", padding: "12px" },
        },
        {
          selector: "edge",
          style: {
            width: 3,
            "curve-style": "bezier",
            "target-arrow-shape": "triangle",
            "line-color": "data(colour)",
            "target-arrow-color": "data(colour)",
            label: "data(label)",
            color: "data(colour)",
            "font-size": 10,
            "font-weight": "bold",
            "text-rotation": "autorotate",
            // Above the line, outlined: the label never hides the edge's colour.
            "text-margin-y": -9,
            "text-outline-color": "#ffffff",
            "text-outline-width": 2,
          },
        },
        { selector: 'edge[health = "error"]', style: { width: 5 } },
        { selector: "edge[!mtls]", style: { "line-style": "dashed" } },
      ],
    });
  }

  update(state: ConsoleState): void {
    const elements: ElementDefinition[] = [];
    const withChildren = new Set(state.nodes.flatMap((n) => (n.parent ? [n.parent] : [])));
    for (const n of state.nodes) {
      // A service without workloads is drawn only when an edge reaches it.
      if (n.kind === "service" && !withChildren.has(n.id) && !state.edges.some((e) => e.target === n.id)) continue;
      elements.push({
        group: "nodes",
        data: { id: n.id, label: n.label, kind: n.kind, border: SYNC_BORDER[n.sync ?? ""] ?? "#4b5563", sync: n.sync ?? "", ...(n.parent ? { parent: n.parent } : {}) },
      });
    }
    for (const e of state.edges) {
      elements.push({
        group: "edges",
        data: { id: e.id, source: e.source, target: e.target, label: edgeLabel(e), colour: HEALTH_COLOURS[e.health], health: e.health, mtls: e.mtls },
      });
    }
    const shape = elements.map((el) => `${el.data.id}>${el.data.parent ?? ""}`).sort().join(",");
    if (shape !== this.shape) {
      this.shape = shape;
      this.cy.elements().remove();
      this.cy.add(elements);
      const roots = state.nodes.filter((n) => n.kind === "gateway").map((n) => `#${CSS.escape(n.id)}`);
      this.cy.layout({ name: "breadthfirst", directed: true, spacingFactor: 1.5, padding: 20, ...(roots.length ? { roots: roots.join(",") } : {}) }).run();
    } else {
      for (const el of elements) this.cy.getElementById(el.data.id!).data(el.data);
    }
  }

  /** What an edge looks like now (tests read it): its line colour and style as drawn. */
  edgeStyle(source: string, target: string): { colour: string; lineStyle: string; label: string } | undefined {
    const edge = this.cy.edges().filter((e) => e.data("source") === source && e.data("target") === target)[0];
    if (!edge) return undefined;
    return { colour: edge.style("line-color") as string, lineStyle: edge.style("line-style") as string, label: edge.data("label") as string };
  }
}
