// CPU time and memory of a process, from /proc (Linux): what every benchmark reports for the
// servers, Envoys and load generators it runs.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from #3 (state) on
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // #14 utime, #15 stime
}

/** cpuSeconds, or NaN when the process is gone. */
export function cpuSecondsIfAlive(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return NaN;
  }
}

/** A memory figure of /proc/<pid>/status in kB (VmRSS: now, VmHWM: peak). */
export function statusKb(pid: number, key: "VmHWM" | "VmRSS"): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
  return m ? Number(m[1]) : NaN;
}
