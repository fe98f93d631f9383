//! `Waiter`: what one `await client.send()` waits on.
//!
//! It keeps asyncio's future protocol (`_asyncio_future_blocking`, `add_done_callback` with a
//! context, `result()`, `cancel(msg)`), so an asyncio or uvloop Task waits on it as on a
//! Future. It adds `resume(result)`: the dispatcher, draining a batch of outcomes in its reader
//! callback, runs each waiting task's step at once instead of through `loop.call_soon`.
//!
//! Why: with 20,000 tasks each awaiting `send()`, a Future's completion cost a `call_soon`
//! (a Python `Handle` and its args tuple, run on the next loop turn) per notification, and
//! those two objects, allocated in bursts of a whole outcome batch before any was freed, set
//! off most of the young garbage collections. `__await__` returns the waiter itself (no
//! iterator object) and one callback is held without a list.
//!
//! Only outside a running task does `resume` run a step itself (a task step cannot start
//! inside another); inside one it schedules, as `set_result` always does.

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use pyo3::PyTraverseError;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Finished,
    Failed,
    Cancelled,
}

/// A done callback and the context it runs in.
type Callback = (Py<PyAny>, Option<Py<PyAny>>);

#[pyclass(module = "pushwire._core")]
pub struct Waiter {
    event_loop: Py<PyAny>,
    state: State,
    /// The result, the exception, or the cancellation message.
    value: Option<Py<PyAny>>,
    /// The first done callback (a task's wake-up); `more` holds any others.
    first: Option<Callback>,
    more: Vec<Callback>,
    /// What was sent (the notification), kept for a resend.
    #[pyo3(get)]
    item: Option<Py<PyAny>>,
    /// asyncio's marker of a future a task may wait on; the task sets it back to False.
    #[pyo3(get, set, name = "_asyncio_future_blocking")]
    blocking: bool,
}

/// `_asyncio.current_task` (C, Python 3.12+), else the `_asyncio._current_tasks` dict that
/// Python 3.10 and 3.11's `asyncio.current_task` (a Python function there) reads.
static CURRENT_TASK: PyOnceLock<CurrentTask> = PyOnceLock::new();

enum CurrentTask {
    Function(Py<PyAny>),
    ByLoop(Py<PyDict>),
}

/// Whether a task is running on `event_loop` now.
fn task_running(event_loop: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = event_loop.py();
    let current = CURRENT_TASK.get_or_try_init(py, || -> PyResult<CurrentTask> {
        let module = py.import("_asyncio")?;
        if let Ok(function) = module.getattr("current_task") {
            return Ok(CurrentTask::Function(function.unbind()));
        }
        // 3.10 and 3.11: the dict `asyncio.current_task` reads (tasks.py imports it from here).
        if let Ok(by_loop) = module.getattr("_current_tasks") {
            if let Ok(by_loop) = by_loop.cast_into::<PyDict>() {
                return Ok(CurrentTask::ByLoop(by_loop.unbind()));
            }
        }
        Ok(CurrentTask::Function(
            py.import("asyncio")?.getattr("current_task")?.unbind(),
        ))
    })?;
    Ok(match current {
        CurrentTask::ByLoop(by_loop) => by_loop
            .bind(py)
            .get_item(event_loop)?
            .is_some_and(|task| !task.is_none()),
        CurrentTask::Function(function) => !function.bind(py).call1((event_loop,))?.is_none(),
    })
}

static CANCELLED_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static INVALID_STATE_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn asyncio_attr<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.import(py, "asyncio", name)
}

fn invalid_state(py: Python<'_>, message: &str) -> PyErr {
    match asyncio_attr(py, &INVALID_STATE_ERROR, "InvalidStateError") {
        Ok(ty) => match ty.call1((message,)) {
            Ok(error) => PyErr::from_value(error),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

#[pymethods]
impl Waiter {
    #[new]
    #[pyo3(signature = (event_loop, item=None))]
    fn new(event_loop: Py<PyAny>, item: Option<Py<PyAny>>) -> Self {
        Self {
            event_loop,
            state: State::Pending,
            value: None,
            first: None,
            more: Vec::new(),
            item,
            blocking: false,
        }
    }

    fn get_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.event_loop.clone_ref(py)
    }

    fn done(&self) -> bool {
        self.state != State::Pending
    }

    fn cancelled(&self) -> bool {
        self.state == State::Cancelled
    }

    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.state {
            State::Finished => Ok(self.value_or_none(py)),
            State::Failed => Err(PyErr::from_value(self.value_or_none(py).into_bound(py))),
            State::Cancelled => Err(self.cancelled_error(py)),
            State::Pending => Err(invalid_state(py, "Result is not ready.")),
        }
    }

    fn exception(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.state {
            State::Finished => Ok(None),
            State::Failed => Ok(Some(self.value_or_none(py))),
            State::Cancelled => Err(self.cancelled_error(py)),
            State::Pending => Err(invalid_state(py, "Exception is not set.")),
        }
    }

    #[pyo3(signature = (callback, *, context=None))]
    fn add_done_callback(
        slf: &Bound<'_, Self>,
        callback: Py<PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let mut this = slf.borrow_mut();
        if this.state != State::Pending {
            let event_loop = this.event_loop.clone_ref(slf.py());
            drop(this);
            return call_soon(slf, &event_loop, (callback, context));
        }
        if this.first.is_none() {
            this.first = Some((callback, context));
        } else {
            this.more.push((callback, context));
        }
        Ok(())
    }

    fn remove_done_callback(
        &mut self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let mut removed = 0;
        let mut kept = Vec::new();
        for (fn_, context) in self.first.take().into_iter().chain(self.more.drain(..)) {
            if fn_.bind(py).eq(callback)? {
                removed += 1;
            } else {
                kept.push((fn_, context));
            }
        }
        let mut kept = kept.into_iter();
        self.first = kept.next();
        self.more = kept.collect();
        Ok(removed)
    }

    #[pyo3(signature = (msg=None))]
    fn cancel(slf: &Bound<'_, Self>, msg: Option<Py<PyAny>>) -> PyResult<bool> {
        if slf.borrow().state != State::Pending {
            return Ok(false);
        }
        finish(slf, State::Cancelled, msg)?;
        schedule_callbacks(slf)?;
        Ok(true)
    }

    fn set_result(slf: &Bound<'_, Self>, result: Py<PyAny>) -> PyResult<()> {
        finish(slf, State::Finished, Some(result))?;
        schedule_callbacks(slf)
    }

    fn set_exception(slf: &Bound<'_, Self>, exception: Py<PyAny>) -> PyResult<()> {
        finish(slf, State::Failed, Some(exception))?;
        schedule_callbacks(slf)
    }

    /// Set the result and run the done callbacks (a waiting task's step) now, each in its
    /// context; inside a running task, schedule them as `set_result` does. False, and
    /// nothing done, when the waiter was already done (its task cancelled it). A callback's
    /// error is the loop's to report, as for a scheduled callback: it never stops the caller,
    /// which is delivering a batch of outcomes. KeyboardInterrupt and SystemExit are raised
    /// again from the loop's next turn.
    fn resume(slf: &Bound<'_, Self>, result: Py<PyAny>) -> PyResult<bool> {
        let py = slf.py();
        if slf.borrow().state != State::Pending {
            return Ok(false);
        }
        finish(slf, State::Finished, Some(result))?;
        let event_loop = slf.borrow().event_loop.clone_ref(py);
        // When it cannot tell, it schedules: that is right everywhere, if slower.
        if task_running(event_loop.bind(py)).unwrap_or(true) {
            schedule_callbacks(slf)?;
            return Ok(true);
        }
        let callbacks = take_callbacks(slf);
        for (callback, context) in callbacks {
            let ran = match context {
                Some(context) => context.bind(py).call_method1("run", (callback, slf)),
                None => callback.bind(py).call1((slf,)),
            };
            if let Err(error) = ran {
                report_callback_error(py, event_loop.bind(py), error)?;
            }
        }
        Ok(true)
    }

    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The first step yields the waiter to the task (asyncio's protocol); the step after its
    /// completion returns the result (StopIteration) or raises.
    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        if this.state == State::Pending {
            if this.blocking {
                return Err(PyRuntimeError::new_err("await wasn't used with future"));
            }
            this.blocking = true;
            return Ok(Some(slf.clone().into_any().unbind()));
        }
        let value = this.result(py)?;
        Err(PyStopIteration::new_err((value,)))
    }

    fn __repr__(&self) -> &'static str {
        match self.state {
            State::Pending => "<Waiter pending>",
            State::Finished | State::Failed => "<Waiter finished>",
            State::Cancelled => "<Waiter cancelled>",
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        visit.call(&self.value)?;
        visit.call(&self.item)?;
        for (callback, context) in self.first.iter().chain(self.more.iter()) {
            visit.call(callback)?;
            visit.call(context)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.value = None;
        self.item = None;
        self.first = None;
        self.more.clear();
    }
}

impl Waiter {
    fn value_or_none(&self, py: Python<'_>) -> Py<PyAny> {
        self.value
            .as_ref()
            .map_or_else(|| py.None(), |v| v.clone_ref(py))
    }

    fn cancelled_error(&self, py: Python<'_>) -> PyErr {
        let ty = match asyncio_attr(py, &CANCELLED_ERROR, "CancelledError") {
            Ok(ty) => ty,
            Err(e) => return e,
        };
        let made = match &self.value {
            Some(msg) => ty.call1((msg,)),
            None => ty.call0(),
        };
        match made {
            Ok(error) => PyErr::from_value(error),
            Err(e) => e,
        }
    }
}

fn finish(slf: &Bound<'_, Waiter>, state: State, value: Option<Py<PyAny>>) -> PyResult<()> {
    let mut this = slf.borrow_mut();
    if this.state != State::Pending {
        let shown = this.__repr__();
        return Err(invalid_state(slf.py(), &format!("invalid state: {shown}")));
    }
    this.state = state;
    this.value = value;
    Ok(())
}

/// The callbacks, taken out so none runs while the waiter is borrowed (a task's wake-up
/// calls `result()` on it).
fn take_callbacks(slf: &Bound<'_, Waiter>) -> Vec<Callback> {
    let mut this = slf.borrow_mut();
    let mut callbacks = Vec::with_capacity(1 + this.more.len());
    callbacks.extend(this.first.take());
    callbacks.append(&mut this.more);
    callbacks
}

fn schedule_callbacks(slf: &Bound<'_, Waiter>) -> PyResult<()> {
    let event_loop = slf.borrow().event_loop.clone_ref(slf.py());
    for callback in take_callbacks(slf) {
        call_soon(slf, &event_loop, callback)?;
    }
    Ok(())
}

fn call_soon(slf: &Bound<'_, Waiter>, event_loop: &Py<PyAny>, callback: Callback) -> PyResult<()> {
    let py = slf.py();
    let (callback, context) = callback;
    let kwargs = PyDict::new(py);
    kwargs.set_item("context", context)?;
    event_loop
        .bind(py)
        .call_method("call_soon", (callback, slf), Some(&kwargs))?;
    Ok(())
}

/// What asyncio's `Handle._run` does with a callback's error: KeyboardInterrupt and
/// SystemExit propagate (here from the loop's next turn, so the batch being delivered is
/// finished first); anything else goes to the loop's exception handler.
fn report_callback_error(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    error: PyErr,
) -> PyResult<()> {
    let interrupt = error.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
        || error.is_instance_of::<pyo3::exceptions::PySystemExit>(py);
    if interrupt {
        let raise_again = wrap_pyfunction!(raise_again, py)?;
        event_loop.call_method1("call_soon", (raise_again, error.into_value(py)))?;
        return Ok(());
    }
    let context = PyDict::new(py);
    context.set_item("message", "Exception in a send() waiter's done callback")?;
    context.set_item("exception", error.into_value(py))?;
    event_loop.call_method1("call_exception_handler", (context,))?;
    Ok(())
}

#[pyfunction]
fn raise_again(error: Bound<'_, pyo3::exceptions::PyBaseException>) -> PyResult<()> {
    Err(PyErr::from_value(error.into_any()))
}
