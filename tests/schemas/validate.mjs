// Validates Kubernetes objects against the schemas of the pinned model packages (package-lock.json):
// Flux's own CRD schemas (@kubernetes-models/flux-cd) and Kubernetes' built-in kinds (kubernetes-models), and
// against the openAPIV3Schema of CustomResourceDefinitions the caller hands in (crds/, e.g. OpenShift's), with ajv.
// stdin: a JSON array of objects, or {objects, crds: [{apiVersion, kind, schema}]}. stdout: a JSON array, one
// {apiVersion, kind, name, errors} per object; an object whose kind has no schema here is an error too, so
// nothing passes unchecked.
import { readFileSync } from "node:fs";
import Ajv from "ajv";

const input = JSON.parse(readFileSync(0, "utf8"));
const objects = Array.isArray(input) ? input : input.objects;
const crds = Array.isArray(input) ? [] : input.crds ?? [];

// The Kubernetes extensions (x-kubernetes-*) are not JSON Schema: ajv ignores them (strict: false); the CEL
// rules some CRDs carry (x-kubernetes-validations) are therefore not checked.
const ajv = new Ajv({ strict: false, allErrors: true });
const crdValidators = new Map(crds.map((crd) => [`${crd.apiVersion} ${crd.kind}`, ajv.compile(crd.schema)]));

// The API server holds a custom resource's name to a DNS-1123 subdomain; the CRD's schema says nothing of it.
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function crdErrors(validate, object) {
  const name = object?.metadata?.name;
  const errors = typeof name === "string" && name.length <= 253 && SUBDOMAIN.test(name)
    ? []
    : ["data/metadata/name must be a DNS-1123 subdomain"];
  if (!validate(object)) errors.push(...validate.errors.map((error) => `data${error.instancePath} ${error.message}`));
  return errors;
}

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
  const crd = crdValidators.get(`${apiVersion} ${kind}`);
  const Model = crd ? null : await modelFor(String(apiVersion), String(kind));
  if (crd) {
    result.errors.push(...crdErrors(crd, object));
  } else if (Model === null) {
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
