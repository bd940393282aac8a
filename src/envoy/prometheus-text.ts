// A reader of Prometheus's text exposition format (what Envoy's /stats/prometheus and Weft's
// /metrics answer): one sample per line, `name{label="value",...} value`. The mesh console reads
// sidecars' scrapes with it (the caller bounds the text's size); tests read scrapes with it.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Every sample in `text` (only those whose name `keep` accepts, when given); throws naming the
 * line when one cannot be read.
 */
export function parsePrometheusText(text: string, keep?: (name: string) => boolean): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (keep && !keep(/^[^{\s]*/.exec(line)![0])) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`Prometheus text, line ${i + 1}: cannot read ${JSON.stringify(line.slice(0, 200))}`);
    samples.push({ name: m[1]!, labels: m[3] ? parseLabels(m[3], i + 1) : {}, value: Number(m[4]) });
  }
  return samples;
}

function parseLabels(text: string, lineNo: number): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw new Error(`Prometheus text, line ${lineNo}: cannot read the labels at ${JSON.stringify(text.slice(at, at + 80))}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_s, c: string) => (c === "n" ? "\n" : c));
    at = re.lastIndex;
  }
  return labels;
}

/** Samples named `name` whose labels include every pair of `match`. */
export function findSamples(samples: Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}
