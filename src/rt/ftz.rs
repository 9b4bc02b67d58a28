//! Flush-to-zero guard for real-time threads.
//!
//! Decaying filter tails and recurrent state drift into denormal numbers, where
//! x86 arithmetic becomes a hundred times slower. The guard sets the MXCSR
//! flush-to-zero (FTZ) and denormals-are-zero (DAZ) bits for the current thread
//! and restores the previous value when dropped.

/// Sets FTZ and DAZ on the current thread while alive; restores the previous state on drop.
///
/// On targets without an MXCSR register the guard does nothing.
#[must_use = "the flags are restored when the guard is dropped"]
pub struct ScopedFtz {
    #[cfg(target_arch = "x86_64")]
    previous: u32,
    // The flags belong to one thread: the guard must not move to another.
    _not_send: std::marker::PhantomData<*const ()>,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

impl ScopedFtz {
    /// Enables flush-to-zero and denormals-are-zero for this thread.
    pub fn enable() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let previous = read_mxcsr();
            write_mxcsr(previous | FTZ_DAZ);
            Self {
                previous,
                _not_send: std::marker::PhantomData,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self {
                _not_send: std::marker::PhantomData,
            }
        }
    }

    /// Whether flush-to-zero is in effect on this thread now.
    pub fn is_active() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            read_mxcsr() & FTZ_DAZ == FTZ_DAZ
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

impl Drop for ScopedFtz {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(self.previous);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut value: u32 = 0;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR register to the given address, which points
    // at a live, aligned local; SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags));
    }
    value
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(value: u32) {
    // SAFETY: `ldmxcsr` loads MXCSR from a live, aligned local. The values written are the
    // register's own previous value or that value with the FTZ and DAZ bits set, both valid.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, readonly, preserves_flags));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_flushes_denormals_and_restores() {
        let tiny = std::hint::black_box(f32::MIN_POSITIVE);
        let before = std::hint::black_box(tiny) / std::hint::black_box(4.0f32);
        assert!(before > 0.0, "denormals should survive without the guard");
        {
            let _guard = ScopedFtz::enable();
            assert!(ScopedFtz::is_active());
            let flushed = std::hint::black_box(tiny) / std::hint::black_box(4.0f32);
            #[cfg(target_arch = "x86_64")]
            assert_eq!(flushed, 0.0);
            let _ = flushed;
        }
        assert!(!ScopedFtz::is_active());
        let after = std::hint::black_box(tiny) / std::hint::black_box(4.0f32);
        assert!(after > 0.0);
    }
}
