// Validates Kubernetes objects against the schemas of the pinned model packages (package-lock.json):
// Flux's own CRD schemas (@kubernetes-models/flux-cd) and Kubernetes' built-in kinds (kubernetes-models).
// stdin: a JSON array of objects. stdout: a JSON array, one {apiVersion, kind, name, errors} per object;
// an object whose kind has no schema here is an error too, so nothing passes unchecked.
import { readFileSync } from "node:fs";

const objects = JSON.parse(readFileSync(0, "utf8"));

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const modules = group.endsWith(".fluxcd.io")
    ? [`@kubernetes-models/flux-cd/${group}/${version}`]
    : [group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`];
  for (const name of modules) {
    try {
      const module = await import(name);
      if (typeof module[kind] === "function") return module[kind];
    } catch (error) {
      if (error.code !== "ERR_MODULE_NOT_FOUND" && error.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw error;
    }
  }
  return null;
}

const results = [];
for (const object of objects) {
  const { apiVersion = "", kind = "", metadata = {} } = object ?? {};
  const result = { apiVersion, kind, name: metadata?.name ?? null, errors: [] };
  const Model = await modelFor(String(apiVersion), String(kind));
  if (Model === null) {
    result.errors.push(`no schema for ${apiVersion} ${kind}`);
  } else {
    try {
      new Model(object).validate();
    } catch (error) {
      result.errors.push(...String(error.message).split(", "));
    }
  }
  results.push(result);
}
process.stdout.write(JSON.stringify(results));
