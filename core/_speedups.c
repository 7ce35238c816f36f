/* The traceback walk of the capture path, in C (optional: see _walk.py).

   Capture runs on the caller's thread and must cost a few microseconds. In
   Python, reading one traceback entry costs four attribute lookups and two
   appends (about 0.25 us on a slow machine), so a 10-frame walk is most of a
   capture. Here the same walk is a few pointer reads per frame. Both
   functions return exactly what their Python twins in _walk.py return; the
   tests check that they agree. No Python code runs during a walk (the GIL is
   held throughout), so the chain cannot change under it, and traceback
   chains cannot be cyclic (tb_next's setter refuses loops). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int
is_traceback(PyObject *tb)
{
    if (PyTraceBack_Check(tb)) {
        return 1;
    }
    if (tb != Py_None) {
        PyErr_SetString(PyExc_TypeError, "expected a traceback or None");
    }
    return 0;
}

/* raise_site(exc_type, tb) -> (exc_type, id(code), lasti) of the innermost
   entry: the storm guard's key. */
static PyObject *
raise_site(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "raise_site(exc_type, tb) takes 2 arguments");
        return NULL;
    }
    PyObject *tb = args[1];
    if (!is_traceback(tb)) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    PyTracebackObject *last = (PyTracebackObject *)tb;
    while (last->tb_next != NULL) {
        last = last->tb_next;
    }
    PyCodeObject *code = PyFrame_GetCode(last->tb_frame);
    PyObject *code_id = PyLong_FromVoidPtr(code);
    Py_DECREF(code);  /* only its id is kept; the caller's frame keeps it alive */
    if (code_id == NULL) {
        return NULL;
    }
    PyObject *lasti = PyLong_FromLong(last->tb_lasti);
    if (lasti == NULL) {
        Py_DECREF(code_id);
        return NULL;
    }
    PyObject *site = PyTuple_New(3);
    if (site == NULL) {
        Py_DECREF(code_id);
        Py_DECREF(lasti);
        return NULL;
    }
    PyTuple_SET_ITEM(site, 0, Py_NewRef(args[0]));
    PyTuple_SET_ITEM(site, 1, code_id);
    PyTuple_SET_ITEM(site, 2, lasti);
    return site;
}

/* frames(tb, limit) -> (code, lasti, code, lasti, ...), innermost last,
   keeping the innermost `limit` entries. */
static PyObject *
frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "frames(tb, limit) takes 2 arguments");
        return NULL;
    }
    PyObject *tb = args[0];
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (limit < 0) {
        limit = 0;
    }
    if (!is_traceback(tb)) {
        return PyErr_Occurred() ? NULL : PyTuple_New(0);
    }
    Py_ssize_t count = 0;
    for (PyTracebackObject *t = (PyTracebackObject *)tb; t != NULL; t = t->tb_next) {
        count++;
    }
    Py_ssize_t skip = count > limit ? count - limit : 0;
    PyObject *out = PyTuple_New(2 * (count - skip));
    if (out == NULL) {
        return NULL;
    }
    PyTracebackObject *t = (PyTracebackObject *)tb;
    for (Py_ssize_t i = 0; i < skip; i++) {
        t = t->tb_next;
    }
    int untrack = 1;
    for (Py_ssize_t i = 0; t != NULL; t = t->tb_next, i += 2) {
        PyObject *lasti = PyLong_FromLong(t->tb_lasti);
        if (lasti == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *code = (PyObject *)PyFrame_GetCode(t->tb_frame);
        untrack = untrack && !PyObject_GC_IsTracked(code);
        PyTuple_SET_ITEM(out, i, code);
        PyTuple_SET_ITEM(out, i + 1, lasti);
    }
    /* Queued events wait for the worker in their thousands: a tuple the garbage
       collector tracks is walked by every collection until it is found to hold
       only untracked objects. Code objects and ints are not tracked, so this one
       can leave the collector's lists now (what the collector would do itself on
       its first pass, as it does for any such tuple). */
    if (untrack) {
        PyObject_GC_UnTrack(out);
    }
    return out;
}

/* chained(exc) -> whether exc has a __cause__, a __context__ or is an
   exception group: whether capture must walk its chain at all. */
static PyObject *
chained(PyObject *module, PyObject *exc)
{
    if (!PyExceptionInstance_Check(exc)) {
        PyErr_SetString(PyExc_TypeError, "chained() expects an exception");
        return NULL;
    }
    PyBaseExceptionObject *base = (PyBaseExceptionObject *)exc;
    if ((base->cause != NULL && base->cause != Py_None)
        || (base->context != NULL && base->context != Py_None)) {
        Py_RETURN_TRUE;
    }
#if PY_VERSION_HEX >= 0x030B0000
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_BaseExceptionGroup)) {
        Py_RETURN_TRUE;
    }
#endif
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"raise_site", (PyCFunction)(void (*)(void))raise_site, METH_FASTCALL,
     "raise_site(exc_type, tb) -> (exc_type, id(code), lasti) of the innermost entry, "
     "or None without a traceback."},
    {"frames", (PyCFunction)(void (*)(void))frames, METH_FASTCALL,
     "frames(tb, limit) -> (code, lasti, ...) innermost last, the innermost limit entries."},
    {"chained", (PyCFunction)chained, METH_O,
     "chained(exc) -> whether exc has a cause, a context or is an exception group."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "errwire._speedups",
    "The capture path's traceback walk in C (optional; errwire._walk falls back to Python).",
    0,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
