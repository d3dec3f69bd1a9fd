//! The one way the state's std mutexes are taken.

use std::sync::{Mutex, MutexGuard};

/// Every critical section leaves the state whole, so a poisoned lock's
/// data is still good: it is taken all the same.
pub(in crate::controller) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
