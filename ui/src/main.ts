// The mesh console page: polls /ui/api/mesh and shows the graph (cytoscape) and the tables.
// Bundled by scripts/build-console.ts into dist/console/app.js; the admin server serves it at /ui.
import type { ConsoleState } from "../../src/admin/console-state.js";
import { MeshGraphView } from "./graph-view.js";
import { renderTables } from "./tables.js";

const POLL_MS = 2000;
const status = document.getElementById("status")!;
const graph = new MeshGraphView(document.getElementById("graph")!);

/** For tests and curious users: the graph and the last state (window.weftConsole). */
declare global {
  interface Window {
    weftConsole: { graph: MeshGraphView; state?: ConsoleState };
  }
}
window.weftConsole = { graph };

async function poll(): Promise<void> {
  try {
    const res = await fetch("api/mesh", { cache: "no-store" });
    if (!res.ok) throw new Error(`the admin server answered ${res.status}`);
    const state = (await res.json()) as ConsoleState;
    graph.update(state);
    renderTables(state);
    window.weftConsole.state = state;
    const m = state.metrics;
    status.textContent = `updated ${state.generatedAt.slice(11, 19)} UTC · ${state.proxies.length} proxies · metrics: ${m.source === "none" ? `none (${m.note ?? ""})` : `${m.source} stats, last ${m.windowSeconds} s`}`;
    document.body.dataset.updated = state.generatedAt;
  } catch (err) {
    status.textContent = `cannot read the mesh: ${(err as Error).message}`;
  } finally {
    setTimeout(() => void poll(), POLL_MS);
  }
}
void poll();
