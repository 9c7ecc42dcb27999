//! The system catalog: the public package `whisk.system/utils` with the building blocks
//! OpenWhisk's catalog ships there (echo, cat, head, sort, split, date, smash, namespace,
//! hosturl), written for Whirl in Node.js. Installed at start when missing; entities that exist
//! (a previous start, or an operator's changes) are left as they are.

use serde_json::{json, Value};
use whirl_model::{Action, ActionLimits, Exec, Package, Params};
use whirl_spi::{Collection, PutMode, StoreError};

use crate::Inner;

/// The catalog's namespace and package.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";
/// The catalog package of building blocks.
pub const UTILS_PACKAGE: &str = "utils";

/// (name, description, code).
const UTILS: &[(&str, &str, &str)] = &[
    (
        "echo",
        "Returns the input",
        "function main(params) {\n  return params;\n}\n",
    ),
    (
        "cat",
        "Concatenates input into a string",
        "function main(params) {\n  const lines = Array.isArray(params.lines) ? params.lines : [];\n  return { lines, payload: lines.join('\\n') };\n}\n",
    ),
    (
        "head",
        "Extract prefix of an array",
        "function main(params) {\n  const lines = Array.isArray(params.lines) ? params.lines : [];\n  const num = params.num || 1;\n  return { lines: lines.slice(0, num), num };\n}\n",
    ),
    (
        "sort",
        "Sorts an array",
        "function main(params) {\n  const lines = Array.isArray(params.lines) ? params.lines.slice() : [];\n  lines.sort();\n  return { lines, length: lines.length };\n}\n",
    ),
    (
        "split",
        "Split a string into an array",
        "function main(params) {\n  const payload = typeof params.payload === 'string' ? params.payload : '';\n  const separator = params.separator === undefined ? '\\n' : params.separator;\n  return { lines: payload.split(separator), payload };\n}\n",
    ),
    (
        "date",
        "Current date and time",
        "function main() {\n  const date = new Date();\n  console.log('It is now ' + date);\n  return { date: date.toISOString() };\n}\n",
    ),
    (
        "smash",
        "Nests all properties under given property",
        "function main(params) {\n  const field = params.$fieldName;\n  if (typeof field !== 'string') {\n    return { error: \"Expected an argument '$fieldName' of type 'string'.\" };\n  }\n  const rest = Object.assign({}, params);\n  delete rest.$fieldName;\n  return { [field]: rest };\n}\n",
    ),
    (
        "namespace",
        "Returns namespace for the authorization key used to invoke this action",
        "function main() {\n  return { namespace: process.env.__OW_NAMESPACE };\n}\n",
    ),
    (
        "hosturl",
        "Returns the URL to activate an action or trigger",
        "function main(params) {\n  const host = process.env.__OW_API_HOST || '';\n  const ns = process.env.__OW_NAMESPACE;\n  const path = params.path || '';\n  if (params.web) {\n    const parts = path.split('/');\n    const pkg = parts.length > 1 ? parts[0] : 'default';\n    const name = parts[parts.length - 1];\n    return { url: `${host}/api/v1/web/${ns}/${pkg}/${name}${params.ext || '.json'}` };\n  }\n  const collection = params.trigger ? 'triggers' : 'actions';\n  return { url: `${host}/api/v1/namespaces/${ns}/${collection}/${path}` };\n}\n",
    ),
];

fn description(d: &str) -> Params {
    let mut p = Params::new();
    p.put("description", Value::String(d.to_owned()));
    p
}

/// Writes a document unless one is there; returns whether it wrote.
async fn create(
    inner: &Inner,
    c: Collection,
    name: &str,
    body: &Value,
) -> Result<bool, StoreError> {
    if inner
        .entities
        .get(c, SYSTEM_NAMESPACE, name)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    match inner
        .entities
        .put(c, SYSTEM_NAMESPACE, name, body, PutMode::Create)
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Installs what is missing of `whisk.system/utils`; returns how many entities it created.
pub(crate) async fn install(inner: &Inner) -> Result<usize, StoreError> {
    let kind = match inner.manifest.resolve("nodejs:default") {
        Ok(k) => k.kind.clone(),
        Err(_) => {
            tracing::warn!(
                "no nodejs kind in the runtime manifest: the system catalog is not installed"
            );
            return Ok(0);
        }
    };
    let now = whirl_model::time::now_ms();
    let package = Package {
        namespace: SYSTEM_NAMESPACE.into(),
        name: UTILS_PACKAGE.into(),
        version: "0.0.1".into(),
        publish: true,
        binding: None,
        annotations: description("Building blocks that format and assemble data"),
        parameters: Params::new(),
        updated: now,
    };
    let body = serde_json::to_value(&package).map_err(|e| StoreError::Backend(e.to_string()))?;
    let mut created = usize::from(create(inner, Collection::Packages, UTILS_PACKAGE, &body).await?);
    for (name, what, code) in UTILS {
        let mut annotations = description(what);
        annotations.put("provide-api-key", json!(false));
        annotations.put("exec", Value::String(kind.clone()));
        let action = Action {
            namespace: format!("{SYSTEM_NAMESPACE}/{UTILS_PACKAGE}"),
            name: (*name).to_owned(),
            version: "0.0.1".into(),
            publish: false,
            exec: Exec::Code {
                kind: kind.clone(),
                code: (*code).to_owned(),
                binary: false,
                main: None,
            },
            annotations,
            parameters: Params::new(),
            limits: ActionLimits::standard(&inner.config.limits),
            updated: now,
        };
        let body = serde_json::to_value(&action).map_err(|e| StoreError::Backend(e.to_string()))?;
        let doc = format!("{UTILS_PACKAGE}/{name}");
        created += usize::from(create(inner, Collection::Actions, &doc, &body).await?);
    }
    if created > 0 {
        inner.actions.begin_write();
        inner.actions.remove_packaged();
    }
    Ok(created)
}
