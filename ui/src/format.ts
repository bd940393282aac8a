// How numbers read on the page.

export function rate(rps: number | undefined): string {
  if (rps === undefined) return "–";
  return rps >= 10 ? rps.toFixed(0) : rps >= 0.1 ? rps.toFixed(1) : rps > 0 ? rps.toFixed(2) : "0";
}

export function percent(share: number | undefined): string {
  if (share === undefined) return "–";
  const p = share * 100;
  return `${p === 0 || p >= 10 ? p.toFixed(0) : p.toFixed(1)} %`;
}

export function millis(ms: number | undefined): string {
  if (ms === undefined) return "–";
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(ms >= 10 ? 0 : 1)} ms`;
}

export function duration(seconds: number): string {
  if (seconds < 0) return `expired ${duration(-seconds)} ago`;
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min ${Math.floor(seconds % 60)} s`;
}
