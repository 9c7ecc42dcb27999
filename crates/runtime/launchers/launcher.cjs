// Whirl's Node.js action launcher (written out and started by whirl-runtime).
//
// Protocol, one JSON object per line:
//   stdin:  {"id": 0, "init": {"dir", "file", "archive", "main", "name", "env"}}  (first line)
//           {"id": N, "run": <the /run request body>}                           (then one per activation)
//   fd 3:   {"id": N, "ok": true} | {"id": N, "result": <json>} | {"id": N, "error": "<message>"}
// stdout and stderr are flushed before each answer, so the runtime's end-of-activation sentinels
// follow all of the action's output.
//
// Concurrent mode (the init message carries "concurrency" > 1): requests are handled as they
// arrive, without waiting for earlier ones. Each activation runs in its own AsyncLocalStorage
// context; every line it writes to process.stdout / process.stderr (console.* included) is
// tagged "\x1e<activation id>\x1f<line>", a partial line is completed at the activation's end,
// and the activation's output ends with its tagged sentinel on both streams, written here just
// before the answer (see crates/model/src/logtag.rs). process.env shows each activation its own
// __OW_* values. Writes outside any activation (module-level timers, after an activation
// answered, raw writes to fd 1 and 2) stay untagged: they belong to no activation's record.
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');
const vm = require('vm');
const { pathToFileURL } = require('url');
const { AsyncLocalStorage } = require('async_hooks');

const ANSWERS = 3;
const NOT_DICTIONARY = 'The action did not return a dictionary or array.';

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
const TAG_START = '\x1e';
const TAG_END = '\x1f';
// The platform's log reader splits lines at 16 KiB (newline included): a tagged line must fit, so
// longer lines become several tagged lines, and a partial line is written out once it is that long.
const MAX_LINE_BYTES = 16 * 1024;

let entry = null;
let exported = [];
let concurrent = false;

// The activation whose code is running (concurrent mode only).
const current = new AsyncLocalStorage();
// The streams' own write methods, from before tagging was installed.
const rawWrite = [null, null];

class Activation {
  constructor(id) {
    this.id = String(id);
    this.tag = TAG_START + this.id + TAG_END;
    this.max = MAX_LINE_BYTES - 1 - Buffer.byteLength(this.tag);
    this.partial = ['', ''];
    this.env = null;
    this.done = false;
  }

  // `line` as tagged lines, each within the reader's line length.
  tagged(line) {
    // Up to 3 UTF-8 bytes per UTF-16 unit: short lines need no measuring.
    if (line.length * 3 <= this.max || Buffer.byteLength(line) <= this.max) return this.tag + line + '\n';
    const bytes = Buffer.from(line, 'utf8');
    let out = '';
    let start = 0;
    while (start < bytes.length) {
      let end = Math.min(start + this.max, bytes.length);
      // Never split a character: back off over UTF-8 continuation bytes.
      while (end < bytes.length && end > start && (bytes[end] & 0xc0) === 0x80) end--;
      out += this.tag + bytes.toString('utf8', start, end) + '\n';
      start = end;
    }
    return out;
  }

  // The tagged complete lines of `text` written to stream s; the rest waits for its newline.
  tagLines(s, text) {
    const buf = this.partial[s] + text;
    let out = '';
    let start = 0;
    let nl;
    while ((nl = buf.indexOf('\n', start)) !== -1) {
      out += this.tagged(buf.slice(start, nl));
      start = nl + 1;
    }
    let rest = buf.slice(start);
    if (rest.length > this.max) {
      out += this.tagged(rest);
      rest = '';
    }
    this.partial[s] = rest;
    return out;
  }

  // Completes a partial line and prints the tagged sentinel on both streams; later writes from
  // this activation's context are untagged.
  end() {
    if (this.done) return;
    this.done = true;
    const streams = [process.stdout, process.stderr];
    for (let s = 0; s < 2; s++) {
      let out = this.partial[s] ? this.tagged(this.partial[s]) : '';
      this.partial[s] = '';
      out += this.tag + SENTINEL + '\n';
      rawWrite[s].call(streams[s], out);
    }
  }
}

function chunkText(chunk, encoding) {
  if (typeof chunk === 'string') {
    return encoding && encoding !== 'utf8' && encoding !== 'utf-8' && Buffer.isEncoding(encoding)
      ? Buffer.from(chunk, encoding).toString('utf8')
      : chunk;
  }
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  return String(chunk);
}

function installTagging() {
  const streams = [process.stdout, process.stderr];
  streams.forEach((stream, s) => {
    const write = stream.write;
    rawWrite[s] = write;
    stream.write = function (chunk, encoding, cb) {
      const act = current.getStore();
      if (act === undefined || act.done) return write.call(this, chunk, encoding, cb);
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      return write.call(this, act.tagLines(s, chunkText(chunk, encoding)), cb);
    };
  });
  // process.env shows the current activation its own __OW_* values (they differ per activation
  // and several run at once); everything else is the process's environment.
  const base = process.env;
  const own = (k) => {
    const act = current.getStore();
    return act !== undefined && act.env !== null && typeof k === 'string' && Object.prototype.hasOwnProperty.call(act.env, k)
      ? act.env
      : null;
  };
  process.env = new Proxy(base, {
    get(target, k) {
      const e = own(k);
      return e ? e[k] : Reflect.get(target, k);
    },
    has(target, k) {
      return own(k) !== null || Reflect.has(target, k);
    },
    set(target, k, v) {
      const e = own(k);
      if (e) e[k] = String(v);
      else target[k] = v;
      return true;
    },
    deleteProperty(target, k) {
      const e = own(k);
      if (e) delete e[k];
      else delete target[k];
      return true;
    },
    ownKeys(target) {
      const keys = Reflect.ownKeys(target);
      const act = current.getStore();
      if (act !== undefined && act.env !== null) {
        for (const k of Object.keys(act.env)) if (!keys.includes(k)) keys.push(k);
      }
      return keys;
    },
    getOwnPropertyDescriptor(target, k) {
      const e = own(k);
      if (e) return { value: e[k], writable: true, enumerable: true, configurable: true };
      return Reflect.getOwnPropertyDescriptor(target, k);
    },
  });
}

function flushed(stream) {
  // Pipes and files are written synchronously on Linux: usually nothing is pending.
  if (!stream.writableLength) return null;
  return new Promise((resolve) => {
    try {
      stream.write('', () => resolve());
    } catch (e) {
      resolve();
    }
  });
}

async function answer(text) {
  const pending = [flushed(process.stdout), flushed(process.stderr)].filter((p) => p !== null);
  if (pending.length) await Promise.all(pending);
  const buf = Buffer.from(text + '\n', 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(ANSWERS, buf, off, buf.length - off);
    } catch (e) {
      // The runtime is gone: nobody is left to answer.
      if (e.code === 'EPIPE') process.exit(0);
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

function envelope(id, key, json) {
  return `{"id":${id},"${key}":${json}}`;
}

// A text action is evaluated as OpenWhisk's nodejs runtime does: the function named by `main`
// declared at top level, or else `module.exports[main]` / `exports[main]`.
function loadText(file, main) {
  if (!/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(main)) {
    throw new Error(`Action entrypoint '${main}' is not a valid function name.`);
  }
  const code = fs.readFileSync(file, 'utf8');
  // Compile the code alone first, so a syntax error points into it rather than at our epilogue.
  vm.compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
  const key = Symbol.for('whirl.entry');
  const source = `${code}\n;module[Symbol.for('whirl.entry')] = (() => {
    try { return ${main}; } catch (e) {
      if (e && e.name === 'ReferenceError') { return module.exports.${main} || exports.${main}; }
      throw e;
    }
  })();\n`;
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  mod._compile(source, file);
  mod.loaded = true;
  return mod[key];
}

// An archive: `main` is `fn` (module from package.json `main`, or index.js) or `module.fn`.
async function loadArchive(dir, main) {
  const m = /^([^.]+)$|^([^.]+)\.(.+)$/.exec(main);
  if (!m) throw new Error('Name of main function is not valid.');
  const index = m[2];
  const fn = m[3] || m[1];
  if (index === undefined && !fs.existsSync(path.join(dir, 'package.json')) && !fs.existsSync(path.join(dir, 'index.js'))) {
    throw new Error('Zipped actions must contain either package.json or index.js at the root.');
  }
  const target = index !== undefined ? path.join(dir, index) : dir;
  let exports;
  try {
    exports = require(target);
  } catch (e) {
    if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      exports = await import(pathToFileURL(require.resolve(target)).href);
    } else {
      throw e;
    }
  }
  let handler = exports;
  for (const part of fn.split('.')) handler = handler == null ? undefined : handler[part];
  if (typeof handler !== 'function' && exports && exports.default && typeof exports.default === 'object') {
    handler = exports.default[fn];
  }
  return handler;
}

async function init(id, msg) {
  if (Number.isInteger(msg.concurrency) && msg.concurrency > 1 && !concurrent) {
    concurrent = true;
    installTagging();
    // The initialization's output belongs to the activation it runs for; the runtime prints the
    // tagged sentinels if it fails (on success that activation's run ends the output).
    if (msg.activation_id) {
      const act = new Activation(msg.activation_id);
      return current.run(act, () => initialize(id, msg));
    }
  }
  return initialize(id, msg);
}

async function initialize(id, msg) {
  try {
    for (const [k, v] of Object.entries(msg.env || {})) process.env[k] = v;
    process.chdir(msg.dir);
    const main = msg.main || 'main';
    const handler = msg.archive ? await loadArchive(msg.dir, main) : loadText(msg.file, main);
    if (typeof handler !== 'function') {
      throw `Action entrypoint '${main}' is not a function.`;
    }
    entry = handler;
  } catch (error) {
    console.error('Error during initialization:', error);
    let detail = error && error.stack ? String(error.stack) : String(error);
    if (error instanceof SyntaxError) {
      // The frames would all be the launcher's; the location and message are what matter.
      detail = detail.split('\n').filter((l) => !l.startsWith('    at ')).join('\n').trim();
    }
    await answer(envelope(id, 'error', JSON.stringify(`Initialization has failed due to: ${detail}`)));
    return;
  }
  await answer(envelope(id, 'ok', 'true'));
}

// Like the serialize-error package OpenWhisk's runtime uses: errors become plain objects.
function serializeError(value, seen = new WeakSet()) {
  if (typeof value === 'function') return `[Function: ${value.name || 'anonymous'}]`;
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Buffer.isBuffer(value)) return '[object Buffer]';
  if (typeof value.toJSON === 'function' && !(value instanceof Error)) return value.toJSON();
  if (Array.isArray(value)) return value.map((v) => serializeError(v, seen));
  const out = {};
  for (const k of Object.keys(value)) {
    if (typeof value[k] !== 'function') out[k] = serializeError(value[k], seen);
  }
  if (value instanceof Error) {
    for (const k of ['name', 'message', 'stack', 'code', 'cause']) {
      if (value[k] !== undefined && !(k in out)) out[k] = serializeError(value[k], seen);
    }
  }
  return out;
}

async function run(id, request) {
  request = request || {};
  if (!concurrent) return runOne(id, request, answer);
  const act = new Activation(request.activation_id || `request-${id}`);
  act.env = {};
  for (const [k, v] of Object.entries(request)) {
    if (k !== 'value') act.env['__OW_' + k.toUpperCase()] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  // The activation's output ends (tagged sentinels) before its answer goes out.
  const finish = async (text) => {
    act.end();
    await answer(text);
  };
  return current.run(act, () => runOne(id, request, finish));
}

async function runOne(id, request, answer) {
  if (!concurrent) {
    const present = [];
    for (const [k, v] of Object.entries(request)) {
      if (k === 'value') continue;
      const name = '__OW_' + k.toUpperCase();
      process.env[name] = typeof v === 'string' ? v : JSON.stringify(v);
      present.push(name);
    }
    for (const stale of exported) if (!present.includes(stale)) delete process.env[stale];
    exported = present;
  }
  const params = request.value === undefined || request.value === null ? {} : request.value;

  let result;
  try {
    result = entry(params);
  } catch (error) {
    // A synchronous throw: OpenWhisk's nodejs runtime answers 502 "An error has occurred: ...".
    console.error(error);
    await answer(envelope(id, 'error', JSON.stringify(`An error has occurred: ${error}`)));
    return;
  }
  try {
    result = await result;
  } catch (error) {
    // A rejected promise is a result holding the (serialized) rejection reason.
    result = { error: error ? serializeError(error) : {} };
  }
  if (result === undefined) result = {};
  let json;
  try {
    json = result !== null && typeof result === 'object' ? JSON.stringify(result) : undefined;
  } catch (error) {
    await answer(envelope(id, 'error', JSON.stringify(`The action returned a result that is not JSON serializable: ${error}`)));
    return;
  }
  if (json === undefined) {
    console.error(`Result must be of type object but has type "${result === null ? 'null' : typeof result}":`, result);
    await answer(envelope(id, 'error', JSON.stringify(NOT_DICTIONARY)));
    return;
  }
  await answer(envelope(id, 'result', json));
}

async function handle(line) {
  const msg = JSON.parse(line);
  const id = Number.isInteger(msg.id) ? msg.id : 0;
  if (msg.init) return init(id, msg.init);
  if (entry === null) return answer(envelope(id, 'error', JSON.stringify('System not initialized.')));
  return run(id, msg.run);
}

function failed(e) {
  console.error('whirl launcher failure:', e);
  process.exit(70);
}

// Requests are handled one at a time, in order, until an init message asks for concurrency;
// from then on each starts as it arrives (answers carry their request id).
const queue = [];
let busy = false;
function pump() {
  while (concurrent && !busy && queue.length > 0) handle(queue.shift()).catch(failed);
  if (busy || queue.length === 0) return;
  busy = true;
  const line = queue.shift();
  handle(line)
    .catch(failed)
    .finally(() => {
      busy = false;
      pump();
    });
}

let pending = [];
process.stdin.on('data', (chunk) => {
  let start = 0;
  let nl;
  while ((nl = chunk.indexOf(10, start)) !== -1) {
    pending.push(chunk.subarray(start, nl));
    queue.push(Buffer.concat(pending).toString('utf8'));
    pending = [];
    start = nl + 1;
  }
  if (start < chunk.length) pending.push(chunk.subarray(start));
  pump();
});
process.stdin.on('end', () => process.exit(0));
