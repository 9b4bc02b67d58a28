//! Real-time scheduling for the threads that must wake on time.

/// Lowest real-time (SCHED_FIFO) priority: above every ordinary thread, below JACK's own.
const PRIORITY: i32 = 1;

/// Asks for SCHED_FIFO at the lowest real-time priority for the calling thread. Returns
/// false (and changes nothing) where the system refuses: without the privilege (root,
/// CAP_SYS_NICE or an rtprio limit) or off Linux. Call it once at the thread's start.
pub fn make_current_thread_realtime() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param {
            sched_priority: PRIORITY,
        };
        // SAFETY: `pthread_self` is always valid for the calling thread, and `param` is a
        // live, initialised `sched_param`; the call only reads it.
        let rc =
            unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}
