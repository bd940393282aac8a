// What kubelet does with a container's env and args before it starts it, for the harness that
// plays kubelet (kubelet.ts): env values from the downward API (fieldRef) and Kubernetes'
// `$(VAR)` expansion in command and args — `$(NAME)` becomes the value of an env var defined
// for the container, `$$` becomes `$`, and a reference to an undefined var is left as written.
import type { V1Container, V1Pod } from "@kubernetes/client-node";

/** Expands `$(VAR)` references in `text` as kubelet does for command and args. */
export function expandContainerReferences(text: string, env: Record<string, string>): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== "$" || i + 1 >= text.length) {
      out += c;
      continue;
    }
    const next = text[i + 1]!;
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "(") {
      const close = text.indexOf(")", i + 2);
      const name = close < 0 ? "" : text.slice(i + 2, close);
      if (close >= 0 && Object.hasOwn(env, name)) {
        out += env[name];
        i = close;
      } else if (close >= 0) {
        out += text.slice(i, close + 1);
        i = close;
      } else {
        out += text.slice(i);
        break;
      }
    } else {
      out += c;
    }
  }
  return out;
}

/** The container's env as kubelet resolves it: literal values (expanded in order) and fieldRefs of the pod. */
export function containerEnv(container: V1Container, pod: V1Pod, podIp: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = expandContainerReferences(e.value, env);
    else if (e.valueFrom?.fieldRef) {
      const field = e.valueFrom.fieldRef.fieldPath;
      const value =
        field === "metadata.name" ? pod.metadata?.name
        : field === "metadata.namespace" ? pod.metadata?.namespace
        : field === "metadata.uid" ? pod.metadata?.uid
        : field === "spec.serviceAccountName" ? (pod.spec?.serviceAccountName ?? "default")
        : field === "spec.nodeName" ? pod.spec?.nodeName
        : field === "status.podIP" ? podIp
        : undefined;
      if (value === undefined) throw new Error(`container ${container.name}: env ${e.name}: fieldRef ${field} is not supported by the kubelet harness`);
      env[e.name] = value;
    } else {
      throw new Error(`container ${container.name}: env ${e.name}: only value and fieldRef are supported by the kubelet harness`);
    }
  }
  return env;
}
