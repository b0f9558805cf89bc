//! Coarse deadlines: timeouts on the request path that register no tokio timer.
//!
//! A tokio timer is registered in the runtime's timer wheel when first polled (a
//! lock, an insertion, and a write to the driver's eventfd when it is the nearest)
//! and removed when dropped; a relayed request sets two (hyper's header-read
//! timeout, the REST client's request timeout). A thread that serves connections
//! on a single-threaded runtime can instead keep a list of its deadlines
//! ([`Deadlines::install`]) and check it from a task of its own
//! ([`Installed::tick`], which says when to check next): a deadline is then a slot
//! in that list, and fires when that task next runs after it passes, never
//! before.
//!
//! [`within`] and [`sleep_until`] use the thread's list for limits of at least
//! [`COARSE_FROM`] and tokio's timers otherwise, or on a thread without a list.
//!
//! Invariants:
//! - a slot belongs to the [`CoarseSleep`] that took it until that is dropped: the
//!   tick only marks it fired, so a slot index never names someone else's deadline;
//! - the waker a sleep was last polled with is the one woken: both the poll that
//!   stores it and the tick that takes it hold the list's lock (wakers are woken
//!   and dropped after it is released);
//! - a deadline is never later than [`COARSE_FROM`] from when it is set, so a
//!   ticking task that never sleeps longer than that (as [`Installed::tick`]'s
//!   answer ensures with [`MAX_TICK_GAP`]) is never woken after a deadline it was
//!   not told of.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The shortest limit kept in the thread's list; shorter ones get a tokio timer.
pub const COARSE_FROM: Duration = Duration::from_secs(1);

/// The longest [`Installed::tick`] lets its task wait before the next tick: no
/// longer than [`COARSE_FROM`], so a deadline set meanwhile (at least that far
/// ahead) is never passed unseen.
pub const MAX_TICK_GAP: Duration = COARSE_FROM;

thread_local! {
    static THIS_THREAD: RefCell<Option<Deadlines>> = const { RefCell::new(None) };
}

/// One thread's list of coarse deadlines. Cloning gives another handle to the
/// same list.
#[derive(Clone, Default)]
pub struct Deadlines {
    list: Arc<Mutex<List>>,
}

impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines")
            .field("waiting", &self.lock().waiting)
            .finish()
    }
}

#[derive(Default)]
struct List {
    slots: Vec<Slot>,
    /// Indices of slots nobody holds.
    free: Vec<usize>,
    /// Slots held and not yet fired.
    waiting: usize,
}

struct Slot {
    deadline: Instant,
    state: SlotState,
    waker: Option<Waker>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Waiting,
    Fired,
}

impl Deadlines {
    /// A new list, made this thread's until the returned guard is dropped:
    /// [`within`] and [`sleep_until`] called on this thread use it meanwhile. The
    /// caller must call [`Installed::tick`] when it says (a task on the thread's
    /// runtime, for as long as the thread serves anything); deadlines left when
    /// the guard is dropped never fire.
    pub fn install() -> Installed {
        let deadlines = Self::default();
        THIS_THREAD.with(|this| *this.borrow_mut() = Some(deadlines.clone()));
        Installed { deadlines }
    }

    /// True while a deadline in the list has not fired.
    pub fn is_waiting(&self) -> bool {
        self.lock().waiting > 0
    }

    /// Fires every deadline up to `now` (marks it and wakes its task); gives the
    /// earliest deadline still waiting.
    fn fire_until(&self, now: Instant) -> Option<Instant> {
        let mut wake = Vec::new();
        let mut earliest: Option<Instant> = None;
        {
            let mut list = self.lock();
            let mut fired = 0;
            for slot in &mut list.slots {
                if slot.state != SlotState::Waiting {
                    continue;
                }
                if slot.deadline <= now {
                    slot.state = SlotState::Fired;
                    fired += 1;
                    wake.extend(slot.waker.take());
                } else if earliest.is_none_or(|e| slot.deadline < e) {
                    earliest = Some(slot.deadline);
                }
            }
            list.waiting -= fired;
        }
        wake.into_iter().for_each(Waker::wake);
        earliest
    }

    fn lock(&self) -> MutexGuard<'_, List> {
        // The list stays consistent if a holder panicked: every change is one
        // assignment.
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot for `deadline`.
    fn insert(&self, deadline: Instant) -> usize {
        let mut list = self.lock();
        list.waiting += 1;
        let slot = Slot {
            deadline,
            state: SlotState::Waiting,
            waker: None,
        };
        match list.free.pop() {
            Some(index) => {
                list.slots[index] = slot;
                index
            }
            None => {
                list.slots.push(slot);
                list.slots.len() - 1
            }
        }
    }

    /// The list of this thread, if it has one.
    fn of_this_thread() -> Option<Self> {
        THIS_THREAD.with(|this| this.borrow().clone())
    }
}

/// A thread's [`Deadlines`], installed by [`Deadlines::install`]; dropping it
/// takes the list off the thread.
#[derive(Debug)]
pub struct Installed {
    deadlines: Deadlines,
}

impl Installed {
    /// Fires every deadline that has passed; gives when to tick next: the
    /// earliest deadline still waiting, or [`MAX_TICK_GAP`] from now if that is
    /// sooner.
    pub fn tick(&self) -> Instant {
        let now = Instant::now();
        let horizon = now + MAX_TICK_GAP;
        match self.deadlines.fire_until(now) {
            Some(earliest) => earliest.min(horizon),
            None => horizon,
        }
    }

    /// The list.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        // `try_with`: dropped while the thread's locals are torn down, there is
        // nothing left to take the list off.
        let _ = THIS_THREAD.try_with(|this| {
            let mut this = this.borrow_mut();
            if this
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(&current.list, &self.deadlines.list))
            {
                *this = None;
            }
        });
    }
}

/// A sleep until a deadline in a thread's [`Deadlines`]; see the module's notes.
#[derive(Debug)]
pub struct CoarseSleep {
    deadlines: Deadlines,
    slot: usize,
}

impl CoarseSleep {
    fn new(deadlines: Deadlines, deadline: Instant) -> Self {
        let slot = deadlines.insert(deadline);
        Self { deadlines, slot }
    }
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut list = self.deadlines.lock();
        let slot = &mut list.slots[self.slot];
        if slot.state == SlotState::Fired {
            return Poll::Ready(());
        }
        let replaced = match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => slot.waker.replace(cx.waker().clone()),
        };
        drop(list);
        drop(replaced);
        Poll::Pending
    }
}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        let mut list = self.deadlines.lock();
        let slot = &mut list.slots[self.slot];
        let waiting = slot.state == SlotState::Waiting;
        slot.state = SlotState::Free;
        let waker = slot.waker.take();
        if waiting {
            list.waiting -= 1;
        }
        list.free.push(self.slot);
        drop(list);
        drop(waker);
    }
}

/// A sleep until `deadline` in this thread's [`Deadlines`], when it has a list
/// and the deadline is at least [`COARSE_FROM`] away; `None` otherwise (use a
/// tokio timer then).
pub fn sleep_until(deadline: Instant) -> Option<CoarseSleep> {
    if deadline.saturating_duration_since(Instant::now()) < COARSE_FROM {
        return None;
    }
    Deadlines::of_this_thread().map(|deadlines| CoarseSleep::new(deadlines, deadline))
}

/// The time ran out before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// `future`, given up with [`Elapsed`] when it has not finished within `limit`:
/// on this thread's [`Deadlines`] when it has a list and `limit` is at least
/// [`COARSE_FROM`], else with tokio's timer (`tokio::time::timeout`, which also
/// fires when the future has used up its task's budget).
pub fn within<F: Future>(limit: Duration, future: F) -> Within<F> {
    let coarse = if limit >= COARSE_FROM {
        Deadlines::of_this_thread().and_then(|deadlines| {
            let deadline = Instant::now().checked_add(limit)?;
            Some(CoarseSleep::new(deadlines, deadline))
        })
    } else {
        None
    };
    let inner = match coarse {
        Some(sleep) => Timed::Coarse { future, sleep },
        None => Timed::Tokio {
            timeout: tokio::time::timeout(limit, future),
        },
    };
    Within { inner }
}

pin_project_lite::pin_project! {
    /// The future of [`within`].
    #[derive(Debug)]
    pub struct Within<F> {
        #[pin]
        inner: Timed<F>,
    }
}

pin_project_lite::pin_project! {
    /// A future on the thread's list of deadlines, or under tokio's timeout.
    #[project = TimedProjection]
    #[derive(Debug)]
    enum Timed<F> {
        Coarse { #[pin] future: F, sleep: CoarseSleep },
        Tokio { #[pin] timeout: tokio::time::Timeout<F> },
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            TimedProjection::Coarse { future, sleep } => {
                if let Poll::Ready(output) = future.poll(cx) {
                    return Poll::Ready(Ok(output));
                }
                Pin::new(sleep).poll(cx).map(|()| Err(Elapsed))
            }
            TimedProjection::Tokio { timeout } => {
                timeout.poll(cx).map(|result| result.map_err(|_| Elapsed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn poll(sleep: &mut CoarseSleep, waker: &Waker) -> Poll<()> {
        Pin::new(sleep).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_deadline_fires_at_the_first_tick_not_before_it_and_wakes_the_last_waker() {
        let deadlines = Deadlines::default();
        let at = Instant::now() + Duration::from_secs(5);
        let mut sleep = CoarseSleep::new(deadlines.clone(), at);
        let (first, first_waker) = counting();
        let (second, second_waker) = counting();
        assert_eq!(poll(&mut sleep, &first_waker), Poll::Pending);
        assert_eq!(poll(&mut sleep, &second_waker), Poll::Pending);
        assert!(deadlines.is_waiting());

        let before = at - Duration::from_millis(1);
        assert_eq!(deadlines.fire_until(before), Some(at), "the next to fire");
        assert_eq!(poll(&mut sleep, &second_waker), Poll::Pending);
        assert_eq!(second.0.load(Ordering::SeqCst), 0);

        assert_eq!(deadlines.fire_until(at), None, "nothing left to fire");
        assert_eq!(first.0.load(Ordering::SeqCst), 0, "a replaced waker");
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(!deadlines.is_waiting());
        assert_eq!(poll(&mut sleep, &second_waker), Poll::Ready(()));
        deadlines.fire_until(at + Duration::from_secs(1));
        assert_eq!(second.0.load(Ordering::SeqCst), 1, "fired once");
    }

    #[test]
    fn dropped_sleeps_give_their_slots_back_and_never_fire() {
        let deadlines = Deadlines::default();
        let at = Instant::now() + Duration::from_secs(5);
        let (count, waker) = counting();
        let mut kept = CoarseSleep::new(deadlines.clone(), at);
        let mut dropped = CoarseSleep::new(deadlines.clone(), at);
        assert_eq!(poll(&mut dropped, &waker), Poll::Pending);
        drop(dropped);
        // The freed slot is taken again, by a later deadline.
        let mut later = CoarseSleep::new(deadlines.clone(), at + Duration::from_secs(5));
        assert_eq!(deadlines.lock().slots.len(), 2);
        assert_eq!(poll(&mut kept, &waker), Poll::Pending);
        assert_eq!(poll(&mut later, &waker), Poll::Pending);
        deadlines.fire_until(at);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "only the kept one");
        assert_eq!(poll(&mut later, &waker), Poll::Pending);
        drop(kept);
        drop(later);
        let list = deadlines.lock();
        assert_eq!((list.waiting, list.free.len()), (0, 2));
    }

    #[test]
    fn short_limits_and_threads_without_a_list_use_tokio_timers() {
        std::thread::spawn(|| {
            let far = Instant::now() + Duration::from_secs(5);
            assert!(sleep_until(far).is_none(), "no list on this thread");
            let installed = Deadlines::install();
            assert!(sleep_until(far).is_some());
            assert!(!installed.deadlines().is_waiting(), "dropped at once");
            let near = Instant::now() + COARSE_FROM / 2;
            assert!(sleep_until(near).is_none(), "under COARSE_FROM");
            drop(installed);
            assert!(sleep_until(far).is_none(), "the list is off the thread");
        })
        .join()
        .unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn within_gives_the_output_or_elapsed() {
        let installed = Deadlines::install();
        let deadlines = installed.deadlines().clone();
        assert_eq!(within(Duration::from_secs(5), async { 7 }).await, Ok(7));
        assert!(
            !deadlines.is_waiting(),
            "a finished call leaves no deadline"
        );

        // A tokio timer for a short limit.
        let short = within(Duration::from_millis(20), std::future::pending::<()>());
        assert_eq!(short.await, Err(Elapsed));

        // The list's, ticked by a task of the test's own.
        let ticker = tokio::spawn(async move {
            loop {
                let next = installed.tick();
                tokio::time::sleep_until(next.into()).await;
            }
        });
        let started = Instant::now();
        let long = within(COARSE_FROM, std::future::pending::<()>());
        assert!(matches!(long.inner, Timed::Coarse { .. }));
        assert!(deadlines.is_waiting());
        assert_eq!(long.await, Err(Elapsed));
        let took = started.elapsed();
        assert!(took >= COARSE_FROM, "early: {took:?}");
        assert!(took < COARSE_FROM * 2, "late: {took:?}");
        ticker.abort();
    }
}
