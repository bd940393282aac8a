// Generates manifests/crds/*.yaml: CustomResourceDefinitions for every Istio kind Weft reads,
// with Istio's groups, versions, kinds, names, short names and categories, and structural
// schemas derived from our own TypeScript types (the kind registry, src/api/kind-registry.ts, names each kind's types file)
// with the TypeScript compiler's type checker.
//
//   npm run gen:crds           # rewrites manifests/crds/
//   npm run gen:crds -- --check  # exits 1 when the committed files differ (CI)
//
// Schema choices:
// - Every object we describe also carries `x-kubernetes-preserve-unknown-fields: true`: an Istio
//   field Weft does not model is kept as written (Weft's validation then reports it by name)
//   instead of being pruned silently by the apiserver. Istio's own CRDs describe every field.
// - No `required` and no `enum`: the apiserver accepts what Istio's CRDs accept; Weft's
//   validation reports missing fields and unknown values with the resource and field named.
// - TypeScript `number` becomes `integer` (ports, weights, counts), except the fields listed in
//   DOUBLE_FIELDS (Istio's double-valued fields).
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { stringify } from "yaml";
import { ISTIO_GROUPS, type PrinterColumn } from "../src/api/kind-registry.js";
import { writeOrCheck } from "./generated-files.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = path.join(ROOT, "manifests", "crds");

interface KindInfo {
  kind: string;
  plural: string;
  shortNames: readonly string[];
  columns: readonly PrinterColumn[];
  /** The file holding the kind's type alias (`type VirtualService = Base<"VirtualService", ...>`). */
  typesFile: string;
  /** The kind's own versions (sorted) and storage version (EnvoyFilter: v1alpha3 only, as Istio's). */
  versions: string[];
  storage: string;
}

interface GroupInfo {
  group: string;
  /** CRD version order: sorted, as Istio's CRDs list them. */
  versions: string[];
  /** Istio's storage version. */
  storage: string;
  categories: string[];
  kinds: KindInfo[];
}

/** Every API group of the kind registry, with its kinds in declaration order. */
const GROUPS: GroupInfo[] = ISTIO_GROUPS.map((g) => ({
  group: g.group,
  versions: [...g.versions].sort(),
  storage: g.storageVersion,
  categories: ["istio-io", g.group.replaceAll(".", "-")],
  kinds: g.kinds.map((d) => ({ kind: d.kind, plural: d.plural, shortNames: d.shortNames, columns: d.printerColumns, typesFile: d.typesFile, versions: [...d.versions].sort(), storage: d.storageVersion })),
}));

/**
 * Status as Weft writes it (src/status/resource-status.ts), other fields kept as written.
 * Conditions are a list keyed by type, so with server-side apply Weft owns its Reconciled
 * condition and other writers keep theirs.
 */
const STATUS_SCHEMA = {
  type: "object",
  "x-kubernetes-preserve-unknown-fields": true,
  properties: {
    observedGeneration: { type: "integer", format: "int64", description: "The generation Weft last reported on." },
    conditions: {
      type: "array",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
      items: {
        type: "object",
        required: ["type"],
        properties: {
          type: { type: "string", description: "Reconciled: Weft validated the resource and no connected proxy rejects configuration derived from it." },
          status: { type: "string" },
          reason: { type: "string" },
          message: { type: "string" },
          observedGeneration: { type: "integer", format: "int64" },
          lastTransitionTime: { type: "string", format: "date-time" },
        },
      },
    },
    validationMessages: {
      type: "array",
      items: { type: "object", "x-kubernetes-preserve-unknown-fields": true, properties: { level: { type: "string" }, description: { type: "string" } } },
    },
  },
};

/** `Interface.field` whose TypeScript number is a double in Istio's API. */
const DOUBLE_FIELDS = new Set(["Percent.value", "Tracing.randomSamplingPercentage", "WarmupConfiguration.minimumPercent", "WarmupConfiguration.aggression", "RetryBudget.percent"]);

type Schema = { [key: string]: unknown };

class SchemaWriter {
  constructor(private readonly checker: ts.TypeChecker) {}

  /** The schema of `type`; `where` names the field for errors. */
  schema(type: ts.Type, where: string, owner?: string): Schema {
    const c = this.checker;
    const parts = (type.isUnion() ? type.types : [type]).filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
    if (parts.length === 0) throw new Error(`${where}: no type`);
    if (parts.every((t) => t.flags & ts.TypeFlags.StringLike)) return { type: "string" };
    if (parts.every((t) => t.flags & ts.TypeFlags.BooleanLike)) return { type: "boolean" };
    if (parts.every((t) => t.flags & ts.TypeFlags.NumberLike)) return { type: owner && DOUBLE_FIELDS.has(owner) ? "number" : "integer" };
    if (parts.length > 1) throw new Error(`${where}: a union of ${parts.map((t) => c.typeToString(t)).join(" | ")} has no structural schema`);
    const t = parts[0]!;
    if (c.isArrayType(t)) {
      const [element] = c.getTypeArguments(t as ts.TypeReference);
      return { type: "array", items: this.schema(element!, `${where}[]`) };
    }
    if (!(t.flags & ts.TypeFlags.Object)) throw new Error(`${where}: type ${c.typeToString(t)} is not supported`);
    const properties = c.getPropertiesOfType(t);
    const index = c.getIndexInfoOfType(t, ts.IndexKind.String);
    // Free-form protobuf JSON (an EnvoyFilter patch value): kept as written, checked by Weft.
    if (index && properties.length === 0 && index.type.flags & ts.TypeFlags.Unknown) return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
    if (index && properties.length === 0) {
      return { type: "object", additionalProperties: this.schema(index.type, `${where}{}`) };
    }
    if (index) throw new Error(`${where}: an object with both fields and an index signature has no structural schema`);
    const out: Schema = {};
    for (const prop of properties) {
      const declaration = prop.valueDeclaration ?? prop.declarations?.[0];
      if (!declaration) throw new Error(`${where}.${prop.name}: no declaration`);
      const parent = declaration.parent;
      const parentName = ts.isInterfaceDeclaration(parent) || ts.isTypeAliasDeclaration(parent) ? parent.name.text : undefined;
      const field = this.schema(c.getTypeOfSymbolAtLocation(prop, declaration), `${where}.${prop.name}`,
        parentName ? `${parentName}.${prop.name}` : undefined);
      const doc = ts.displayPartsToString(prop.getDocumentationComment(c)).trim();
      out[prop.name] = doc ? { description: doc.replace(/\s+/g, " "), ...field } : field;
    }
    return { type: "object", properties: out, "x-kubernetes-preserve-unknown-fields": true };
  }
}

function crd(group: GroupInfo, kind: KindInfo, spec: Schema): Schema {
  const singular = kind.kind.toLowerCase();
  const version = (name: string): Schema => ({
    name,
    served: true,
    storage: name === kind.storage,
    subresources: { status: {} },
    ...(kind.columns.length > 0 && { additionalPrinterColumns: kind.columns }),
    schema: {
      openAPIV3Schema: {
        type: "object",
        description: `${kind.kind} (${group.group}), read by Weft. Schema generated from Weft's types; ` +
          "fields Weft does not model are kept and reported by Weft's validation.",
        properties: {
          spec,
          status: STATUS_SCHEMA,
        },
      },
    },
  });
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${kind.plural}.${group.group}`,
      labels: { "app.kubernetes.io/part-of": "weft" },
      // Helm leaves CRDs (and every custom resource) in place on uninstall, as Istio's chart does.
      annotations: { "helm.sh/resource-policy": "keep" },
    },
    spec: {
      group: group.group,
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular,
        ...(kind.shortNames.length > 0 && { shortNames: kind.shortNames }),
        categories: group.categories,
      },
      scope: "Namespaced",
      versions: kind.versions.map(version),
    },
  };
}

/** The type of `spec` in the alias `type <Kind> = Base<"<Kind>", Spec>` of `file`. */
function specType(program: ts.Program, checker: ts.TypeChecker, file: string, kind: string): ts.Type {
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`${file}: not found`);
  for (const statement of source.statements) {
    if (ts.isTypeAliasDeclaration(statement) && statement.name.text === kind) {
      const type = checker.getTypeAtLocation(statement.name);
      const spec = checker.getPropertyOfType(type, "spec");
      if (!spec) throw new Error(`${file}: type ${kind} has no spec`);
      return checker.getTypeOfSymbolAtLocation(spec, statement);
    }
  }
  throw new Error(`${file}: no type alias ${kind}`);
}

export function generateCrdFiles(): Map<string, string> {
  const files = [...new Set(GROUPS.flatMap((g) => g.kinds.map((k) => path.join(ROOT, k.typesFile))))];
  const program = ts.createProgram(files, { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true });
  const checker = program.getTypeChecker();
  const writer = new SchemaWriter(checker);
  const out = new Map<string, string>();
  for (const group of GROUPS) {
    const docs = group.kinds.map((kind) => {
      const spec = writer.schema(specType(program, checker, path.join(ROOT, kind.typesFile), kind.kind), `${kind.kind}.spec`);
      return stringify(crd(group, kind, spec), { lineWidth: 0, aliasDuplicateObjects: false });
    });
    const typesFiles = [...new Set(group.kinds.map((k) => k.typesFile))].join(", ");
    const header = `# CustomResourceDefinitions for ${group.group} (${group.versions.join(", ")}): Istio's groups, versions\n` +
      `# and kinds, with schemas generated from ${typesFiles}. Generated by scripts/gen-crds.ts; do not edit.\n`;
    out.set(path.join(OUT_DIR, `${group.group}.yaml`), header + docs.map((d) => `---\n${d}`).join(""));
  }
  return out;
}

function main(): void {
  writeOrCheck(generateCrdFiles(), "npm run gen:crds");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
