# Whirl's Python action launcher (written out and started by whirl-runtime).
#
# Protocol, one JSON object per line:
#   stdin:  {"id": 0, "init": {"dir", "file", "archive", "main", "name", "env"}}  (first line)
#           {"id": N, "run": <the /run request body>}                           (then one per activation)
#   fd 3:   {"id": N, "ok": true} | {"id": N, "result": <json>} | {"id": N, "error": "<message>"}
# stdout and stderr are flushed before each answer, so the runtime's end-of-activation sentinels
# follow all of the action's output.

import glob
import importlib.util
import json
import os
import site
import sys
import traceback


def _open_channels():
    # Keep private, non-inheritable copies of the protocol descriptors and point fd 0 at /dev/null,
    # so neither the action nor processes it starts can read our requests or write our answers.
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.dup(3)
    os.close(3)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return requests, answers


def _answer(fd, data):
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            # The runtime is gone: nobody is left to answer.
            os._exit(0)
        view = view[written:]


def _envelope(rid, key, value_json):
    return ('{"id":%d,"%s":%s}\n' % (rid, key, value_json)).encode("utf-8")


def _error(rid, message):
    return _envelope(rid, "error", json.dumps(message))


def _dumps(value):
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except UnicodeEncodeError:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _load(init):
    for key, value in (init.get("env") or {}).items():
        os.environ[key] = value
    directory = init["dir"]
    os.chdir(directory)
    sys.path.insert(0, directory)
    # A virtualenv shipped in the zip: put its site-packages (and their .pth files) first.
    for packages in sorted(glob.glob(os.path.join(directory, "virtualenv", "lib", "python*", "site-packages"))):
        before = list(sys.path)
        site.addsitedir(packages)
        added = [p for p in sys.path if p not in before]
        sys.path[:] = added + before
    spec = importlib.util.spec_from_file_location("main__", init["file"])
    module = importlib.util.module_from_spec(spec)
    sys.modules["main__"] = module
    spec.loader.exec_module(module)
    name = init.get("main") or "main"
    entry = getattr(module, name, None)
    if not callable(entry):
        raise LookupError("Action entrypoint '%s' is not a function." % name)
    return entry


def _serve():
    requests, answers = _open_channels()
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except Exception:
        pass

    line = requests.readline()
    if not line:
        return
    message = json.loads(line)
    rid = message.get("id", 0)
    try:
        entry = _load(message["init"])
    except BaseException as ex:  # noqa: B902 - a failing import must not kill the launcher silently
        traceback.print_exc(file=sys.stderr)
        detail = "".join(traceback.format_exception_only(type(ex), ex)).strip()
        _answer(answers, _error(rid, "Initialization has failed due to: %s" % detail))
        return
    _answer(answers, _envelope(rid, "ok", "true"))

    exported = set()
    while True:
        line = requests.readline()
        if not line:
            return
        message = json.loads(line)
        rid = message.get("id", 0)
        request = message.get("run") or {}
        payload = {}
        present = set()
        for key, value in request.items():
            if key == "value":
                payload = value
                continue
            name = "__OW_" + key.upper()
            os.environ[name] = value if isinstance(value, str) else json.dumps(value)
            present.add(name)
        for stale in exported - present:
            os.environ.pop(stale, None)
        exported = present

        try:
            result = entry(payload)
        except Exception as ex:
            # As OpenWhisk's python runtime does: the traceback goes to the logs and the message
            # becomes the result's error (an application error).
            traceback.print_exc(file=sys.stderr)
            result = {"error": str(ex)}
        try:
            answer = _envelope(rid, "result", _dumps(result))
        except Exception as ex:
            answer = _error(rid, "The action returned a result that is not JSON serializable: %s" % ex)
        _answer(answers, answer)


if __name__ == "__main__":
    _serve()
