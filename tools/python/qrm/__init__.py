"""qrm: score text with quantized reward models, from Python.

A thin ctypes layer over libqrm.so (no compiled extension, standard library
only). The library is found through QRM_LIBRARY (a path), then next to this
package's repository checkout (build/libqrm.so), then the system's loader
path (after `make install`, with LD_LIBRARY_PATH or ldconfig).

    import qrm
    m = qrm.Model("rm.qrm", threads=2)
    m.score_ids([316, 5, 6])                  # [score, ...] the head's outputs
    m.score("What is 2+2?", ["4", "5"])       # one entry per response (best-of-N)
    m.score_messages([{"role": "user", "content": "hi"}, ...])
    m.score_steps("What is 2+2?", ["2 + 2 = 4.", "So 4."])   # a PRM: one per step
    m.tokenize("Hello")                       # the model's tokenizer, no context

Scoring releases the GIL (ctypes does for every call into the library), and
each Python thread gets its own scoring context on the shared model, so
threads score in parallel. Errors raise qrm.Error with qrm's message and
status; a call stopped by Model(..., abort=event) raises qrm.Aborted.

Like the C library, the binding reads no QRM_ISA: call
qrm.set_default_isa("avx2") (or pass the environment's value) to force a
kernel family for the contexts made afterwards.
"""
import ctypes
import json
import os
import threading

__all__ = ["Model", "Error", "Aborted", "version", "set_default_isa"]

# qrm_status (core/qrm.h)
OK, EINVAL, ENOMEM, ETOOLONG, EFORMAT, EIO, ETEXT, EABORTED = 0, -1, -2, -3, -4, -5, -6, -7


class Error(Exception):
    """A qrm call failed; the message is qrm's, status its qrm_status (or None)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class Aborted(Error):
    """The Model's abort event was set during the call (QRM_EABORTED)."""


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    if os.environ.get("QRM_LIBRARY"):
        candidates.append(os.environ["QRM_LIBRARY"])
    candidates.append(os.path.join(here, "..", "..", "..", "build", "libqrm.so"))
    candidates.append("libqrm.so.1")  # the ABI this binding's structures describe
    errors = []
    for path in candidates:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
    raise ImportError("qrm: cannot load libqrm.so (" + "; ".join(errors) + ")")


_lib = _load()
_i32p = ctypes.POINTER(ctypes.c_int32)
_sizep = ctypes.POINTER(ctypes.c_size_t)
_ERR = 256


class _Scores(ctypes.Structure):
    _fields_ = [("n_points", ctypes.c_size_t), ("n_values", ctypes.c_int),
                ("values", ctypes.POINTER(ctypes.c_float)), ("positions", _i32p)]


class _Info(ctypes.Structure):
    _fields_ = [("arch", ctypes.c_char_p), ("hf_architecture", ctypes.c_char_p),
                ("quant", ctypes.c_char_p)] + \
               [(n, ctypes.c_int) for n in ("vocab_size", "hidden_size", "n_layers", "n_heads",
                                            "n_kv_heads", "head_dim", "ffn_size", "max_positions")] + \
               [("head", ctypes.c_char_p), ("per_step", ctypes.c_int), ("logprobs", ctypes.c_int),
                ("n_outputs", ctypes.c_int), ("pad_token_id", ctypes.c_int32),
                ("file_size", ctypes.c_uint64), ("n_params", ctypes.c_uint64)]


_AbortFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _Message(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class _CtxParams(ctypes.Structure):
    _fields_ = [("n_threads", ctypes.c_int), ("max_tokens", ctypes.c_size_t),
                ("isa", ctypes.c_char_p), ("kv_type", ctypes.c_int),
                ("abort_cb", _AbortFn), ("abort_user", ctypes.c_void_p)]


def _fn(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


_version = _fn("qrm_version", ctypes.c_char_p)
_free = _fn("qrm_free", None, ctypes.c_void_p)
_open = _fn("qrm_model_open_with", ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
            ctypes.c_size_t)
_close = _fn("qrm_model_close", None, ctypes.c_void_p)
_info = _fn("qrm_model_get_info", None, ctypes.c_void_p, ctypes.POINTER(_Info))
_name = _fn("qrm_model_output_name", ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
_params_default = _fn("qrm_ctx_params_default", None, ctypes.POINTER(_CtxParams))
_ctx_new = _fn("qrm_ctx_new", ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(_CtxParams),
               ctypes.c_char_p, ctypes.c_size_t)
_ctx_free = _fn("qrm_ctx_free", None, ctypes.c_void_p)
_ctx_error = _fn("qrm_ctx_error", ctypes.c_char_p, ctypes.c_void_p)
_score = _fn("qrm_score", ctypes.c_int, ctypes.c_void_p, _i32p, ctypes.c_size_t, ctypes.POINTER(_Scores))
_scores_free = _fn("qrm_scores_free", None, ctypes.POINTER(_Scores))
_best_of_n = _fn("qrm_score_best_of_n", ctypes.c_int, ctypes.c_void_p, _i32p, ctypes.c_size_t,
                 ctypes.POINTER(_i32p), _sizep, ctypes.c_size_t, ctypes.POINTER(_Scores))
_set_isa = _fn("qrm_set_default_isa", ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)
# the text calls on the model: no context, the message in an err buffer
_tokenize = _fn("qrm_model_tokenize", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                ctypes.c_int, ctypes.POINTER(_i32p), _sizep, ctypes.c_char_p, ctypes.c_size_t)
_encode_msgs = _fn("qrm_model_encode_messages", ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_Message),
                   ctypes.c_size_t, ctypes.POINTER(_i32p), _sizep, ctypes.c_void_p, ctypes.c_char_p,
                   ctypes.c_size_t)
_encode_chat = _fn("qrm_model_encode_chat", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                   ctypes.POINTER(_i32p), _sizep, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)
_encode_pr = _fn("qrm_model_encode_prompt_response", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                 ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_i32p), _sizep,
                 ctypes.c_char_p, ctypes.c_size_t)
_encode_steps = _fn("qrm_model_encode_steps", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                    ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p), _sizep, ctypes.c_size_t,
                    ctypes.POINTER(_i32p), _sizep, ctypes.c_char_p, ctypes.c_size_t)


def version():
    """The version of the loaded libqrm."""
    return _version().decode()


def set_default_isa(name):
    """Forces the kernel family ("scalar", "avx2", "avx512", "neon", "dotprod",
    "i8mm") of contexts made from now on, in this process; None or "": the
    best this CPU runs. Raises Error when the CPU cannot run it."""
    err = ctypes.create_string_buffer(_ERR)
    rc = _set_isa(name.encode() if name else None, err, _ERR)
    if rc:
        raise Error(err.value.decode(errors="replace"), rc)


def _as_ids(ids):
    """A list, tuple, numpy array or any iterable of ints -> a ctypes int32 array."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    ids = list(ids)
    return (ctypes.c_int32 * max(len(ids), 1))(*ids), len(ids)


class Model:
    """A .qrm file, mapped once and shared by every thread that scores with it."""

    _KV = {None: 0, "f32": 1, "f16": 2, "q8": 3}  # qrm_kv_type
    _LOAD = {"map": 0, "copy": 1}  # qrm_load

    def __init__(self, path, threads=0, max_tokens=0, abort=None, kv=None, load="map"):
        """abort: a threading.Event (or anything with is_set()); while it is
        set, scoring calls stop between layers and raise Aborted, and the
        thread's context is left empty and usable. Clear it to score again.
        kv: the KV cache type, "f32", "f16" or "q8" (int8 keys and values:
        attention on the integer units), as `qrm score --kv`; None: f16 for
        quantized models, f32 for float ones.
        load: "map" (the file mapped, shared with other processes) or "copy"
        (copied into huge-page memory: slower to open, faster tokens), as
        `qrm score --load`."""
        if kv not in self._KV:
            raise ValueError("kv: %r is not f32, f16 or q8" % (kv,))
        if load not in self._LOAD:
            raise ValueError("load: %r is not map or copy" % (load,))
        self._kv = self._KV[kv]
        err = ctypes.create_string_buffer(_ERR)
        self._m = _open(os.fsencode(path), self._LOAD[load], err, _ERR)
        if not self._m:
            raise Error(err.value.decode(errors="replace"))
        self._threads, self._max_tokens = threads, max_tokens
        # one C callback for every context; kept here so ctypes keeps it alive
        self._abort_fn = _AbortFn(lambda _user: int(abort.is_set())) if abort is not None else None
        self._local = threading.local()
        self._ctxs = []
        self._lock = threading.Lock()
        info = _Info()
        _info(self._m, ctypes.byref(info))
        self.head = info.head.decode()
        self.per_step = bool(info.per_step)
        self.outputs = [_name(self._m, i).decode() for i in range(info.n_outputs)]
        self.arch = info.arch.decode()
        self.quant = info.quant.decode()

    def close(self):
        """Frees every context and the model (also done when the object is
        collected). Only when no thread is scoring with it: later calls raise."""
        with self._lock:
            for c in self._ctxs:
                _ctx_free(c)
            self._ctxs = []
            if getattr(self, "_m", None):
                _close(self._m)
                self._m = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ctx(self):
        """This thread's context: one per thread, made on first use."""
        if not self._m:  # closed: every context is gone too
            raise Error("the model is closed")
        c = getattr(self._local, "ctx", None)
        if c is None:
            p = _CtxParams()
            _params_default(ctypes.byref(p))
            p.n_threads, p.max_tokens, p.kv_type = self._threads, self._max_tokens, self._kv
            if self._abort_fn is not None:
                p.abort_cb = self._abort_fn
            err = ctypes.create_string_buffer(_ERR)
            c = _ctx_new(self._m, ctypes.byref(p), err, _ERR)
            if not c:
                raise Error(err.value.decode(errors="replace"))
            with self._lock:
                self._ctxs.append(c)
            self._local.ctx = c
        return c

    def _fail(self, c, rc):
        msg = _ctx_error(c).decode(errors="replace")
        raise (Aborted if rc == EABORTED else Error)(msg, rc)

    def _model(self):
        if not self._m:
            raise Error("the model is closed")
        return self._m

    def _text_call(self, fn, *args, after=()):
        """A qrm_model_* text call (args, then the ids and their count, then
        after, then the err buffer): the ids it returns, as a list."""
        ptr, n = _i32p(), ctypes.c_size_t()
        err = ctypes.create_string_buffer(_ERR)
        rc = fn(self._model(), *args, ctypes.byref(ptr), ctypes.byref(n), *after, err, _ERR)
        if rc:
            raise Error(err.value.decode(errors="replace"), rc)
        return self._take_ids(ptr, n)

    def _points(self, s):
        nv = s.n_values
        vals = [s.values[i] for i in range(s.n_points * nv)]
        pts = [vals[i * nv:(i + 1) * nv] for i in range(s.n_points)]
        return pts, [s.positions[i] for i in range(s.n_points)]

    def _result(self, s):
        pts, _ = self._points(s)
        if self.per_step:
            return [p[0] for p in pts]     # one probability per step
        return pts[0] if pts else []       # the head's outputs

    def score_ids(self, ids):
        """The head's outputs for exactly these token ids (a PRM: one value per step)."""
        c = self._ctx()
        arr, n = _as_ids(ids)
        s = _Scores()
        try:
            rc = _score(c, arr, n, ctypes.byref(s))
            if rc:
                self._fail(c, rc)
            return self._result(s)
        finally:
            _scores_free(ctypes.byref(s))

    def _take_ids(self, ptr, n):
        try:
            return [ptr[i] for i in range(n.value)]
        finally:
            _free(ptr)

    def tokenize(self, text, add_special=False):
        """The model's tokenizer: Hugging Face encode(text, add_special_tokens)."""
        t = text.encode()
        return self._text_call(_tokenize, t, len(t), int(bool(add_special)))

    def encode_messages(self, messages):
        """The model's input rule for a conversation ([{"role", "content"}, ...]),
        passed to the library as qrm_message structs. A message with other
        members (tool calls, ...) sends the conversation as JSON instead, so
        that the template still sees them."""
        messages = list(messages)
        if any(isinstance(msg, dict) and set(msg) - {"role", "content"} for msg in messages):
            text = json.dumps(messages).encode()
            return self._text_call(_encode_chat, text, len(text), after=(None,))
        enc = []
        for k, msg in enumerate(messages):
            role, content = msg.get("role"), msg.get("content")
            if not isinstance(role, str) or not isinstance(content, str):
                raise Error("message %d needs a string role and content" % k, EINVAL)
            if "\0" in role or "\0" in content:
                raise Error("message %d contains a NUL character" % k, EINVAL)
            enc.append((role.encode(), content.encode()))
        arr = (_Message * max(len(enc), 1))(*[_Message(r, c) for r, c in enc])
        ptr, n = _i32p(), ctypes.c_size_t()
        err = ctypes.create_string_buffer(_ERR)
        rc = _encode_msgs(self._model(), arr, len(enc), ctypes.byref(ptr), ctypes.byref(n), None, err, _ERR)
        if rc:
            raise Error(err.value.decode(errors="replace"), rc)
        return self._take_ids(ptr, n)

    def encode(self, prompt, response):
        """The model's input rule for a user prompt and an assistant response."""
        p, r = prompt.encode(), response.encode()
        return self._text_call(_encode_pr, p, len(p), r, len(r))

    def encode_steps(self, prompt, steps):
        """A process reward model's input: the prompt and the steps with the separator."""
        p = prompt.encode()
        enc = [st.encode() for st in steps]
        arr = (ctypes.c_char_p * max(len(enc), 1))(*enc)
        lens = (ctypes.c_size_t * max(len(enc), 1))(*[len(e) for e in enc])
        return self._text_call(_encode_steps, p, len(p), arr, lens, len(enc))

    def score_messages(self, messages):
        return self.score_ids(self.encode_messages(messages))

    def score_steps(self, prompt, steps):
        """One probability per step (a process reward model)."""
        return self.score_ids(self.encode_steps(prompt, steps))

    def score_best_of_n(self, sequences):
        """Several token sequences with a common start: the shared prefix runs once.
        Returns one result per sequence, as score_ids would."""
        seqs = [list(s.tolist() if hasattr(s, "tolist") else s) for s in sequences]
        if not seqs:
            return []
        p = len(seqs[0])
        for s in seqs[1:]:
            j = 0
            while j < p and j < len(s) and s[j] == seqs[0][j]:
                j += 1
            p = j
        p = min([p] + [len(s) - 1 for s in seqs])   # every response keeps a token
        if p < 0:
            raise Error("an empty sequence")
        c = self._ctx()
        prefix, _ = _as_ids(seqs[0][:p])
        tails = [_as_ids(s[p:]) for s in seqs]
        ptrs = (_i32p * len(seqs))(*[ctypes.cast(t[0], _i32p) for t in tails])
        lens = (ctypes.c_size_t * len(seqs))(*[t[1] for t in tails])
        out = (_Scores * len(seqs))()
        try:
            rc = _best_of_n(c, prefix, p, ptrs, lens, len(seqs), out)
            if rc:
                self._fail(c, rc)
            return [self._result(out[i]) for i in range(len(seqs))]
        finally:
            for i in range(len(seqs)):
                _scores_free(ctypes.byref(out[i]))

    def score(self, prompt, responses):
        """Best-of-N: one result per response (a list of steps per response for a PRM)."""
        if self.per_step:
            seqs = [self.encode_steps(prompt, r) for r in responses]
        else:
            seqs = [self.encode(prompt, r) for r in responses]
        return self.score_best_of_n(seqs)
