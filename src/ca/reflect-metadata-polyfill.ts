// @peculiar/x509 builds on tsyringe, which refuses to load unless the global `Reflect` has the
// metadata API (`Reflect.getMetadata` and friends, normally from the `reflect-metadata`
// package). That package is not a dependency here, so this module installs the small part of
// the API tsyringe calls — getMetadata, getOwnMetadata, defineMetadata — backed by a WeakMap.
// It changes nothing when a full implementation is already present. Import it (through
// ./x509-library.js) before @peculiar/x509 is evaluated.

type MetadataKey = string | symbol;
type MetadataTarget = object;

interface ReflectMetadataApi {
  getMetadata?(key: MetadataKey, target: MetadataTarget, property?: string | symbol): unknown;
  getOwnMetadata?(key: MetadataKey, target: MetadataTarget, property?: string | symbol): unknown;
  defineMetadata?(key: MetadataKey, value: unknown, target: MetadataTarget, property?: string | symbol): void;
}

const reflectWithMetadata = Reflect as typeof Reflect & ReflectMetadataApi;

if (typeof reflectWithMetadata.getMetadata !== "function") {
  /** target -> property ("" for the target itself) -> key -> value */
  const store = new WeakMap<MetadataTarget, Map<string | symbol, Map<MetadataKey, unknown>>>();
  const ownMap = (target: MetadataTarget, property: string | symbol | undefined, create: boolean): Map<MetadataKey, unknown> | undefined => {
    let byProperty = store.get(target);
    if (!byProperty) {
      if (!create) return undefined;
      byProperty = new Map();
      store.set(target, byProperty);
    }
    const propertyKey = property ?? "";
    let values = byProperty.get(propertyKey);
    if (!values && create) {
      values = new Map();
      byProperty.set(propertyKey, values);
    }
    return values;
  };
  reflectWithMetadata.defineMetadata = (key, value, target, property) => {
    ownMap(target, property, true)!.set(key, value);
  };
  reflectWithMetadata.getOwnMetadata = (key, target, property) => ownMap(target, property, false)?.get(key);
  reflectWithMetadata.getMetadata = (key, target, property) => {
    // Walk the prototype chain, as reflect-metadata does.
    for (let current: MetadataTarget | null = target; current !== null; current = Object.getPrototypeOf(current) as MetadataTarget | null) {
      const values = ownMap(current, property, false);
      if (values?.has(key)) return values.get(key);
    }
    return undefined;
  };
}

export {};
