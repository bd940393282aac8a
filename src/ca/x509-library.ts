// The one place that imports @peculiar/x509: the Reflect metadata polyfill it needs must be
// evaluated first (ES modules evaluate their imports in order).
import "./reflect-metadata-polyfill.js";
export * from "@peculiar/x509";
