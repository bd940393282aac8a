// The validation problems of the config in force, kept where operators look: the admin
// server's /debug/config-problems, `weft status`, and the demo's console. Owned by the mesh
// runner (one per control plane); replaced whole each time a config is applied.
import { formatIssue, isFileRef, type MeshConfig, type ValidationIssue } from "../api/types.js";

/** Problems listed in a report; the rest are counted. */
export const MAX_LISTED_PROBLEMS = 1000;

export interface ConfigProblem {
  severity: ValidationIssue["severity"];
  /** One line for people: `file: document N: Kind/ns/name: field: message`. */
  text: string;
  resource: string;
  field: string;
  message: string;
  /** The file, or the cluster object, it was found in. */
  source: string;
}

export interface ConfigProblemsReport {
  /** How many configs were applied so far (0: none yet). */
  generation: number;
  /** When the config in force was applied (ISO time). */
  appliedAt?: string;
  errors: number;
  warnings: number;
  problems: ConfigProblem[];
  /** Problems beyond MAX_LISTED_PROBLEMS, not listed. */
  omitted: number;
}

export class ConfigProblems {
  private current: ConfigProblemsReport = { generation: 0, errors: 0, warnings: 0, problems: [], omitted: 0 };

  /** Records the problems of the config just applied; returns whether they differ from the previous ones. */
  record(config: Pick<MeshConfig, "issues">, now = new Date()): boolean {
    const before = this.current.problems.map((p) => p.text).join("\n");
    const issues = [...config.issues].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1));
    const problems = issues.slice(0, MAX_LISTED_PROBLEMS).map((i) => ({
      severity: i.severity,
      text: formatIssue(i),
      resource: i.resource,
      field: i.field,
      message: i.message,
      source: isFileRef(i) ? i.file : `${i.cluster || "kubernetes"}`,
    }));
    this.current = {
      generation: this.current.generation + 1,
      appliedAt: now.toISOString(),
      errors: issues.filter((i) => i.severity === "error").length,
      warnings: issues.filter((i) => i.severity === "warning").length,
      problems,
      omitted: Math.max(0, issues.length - MAX_LISTED_PROBLEMS),
    };
    return before !== problems.map((p) => p.text).join("\n");
  }

  report(): ConfigProblemsReport {
    return this.current;
  }
}
