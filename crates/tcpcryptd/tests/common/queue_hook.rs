//! A test NFQUEUE hook in one namespace: packets the given rules queue are rewritten by a
//! closure (or accepted unchanged) on a thread of its own, until the hook is dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tcpcrypt_sys::netns::NetNs;
use tcpcrypt_sys::nfqueue::{Queue, QueueConfig, Verdict};

/// Rewrites queued packets of A with `f` (`None`: accept unchanged); stops when dropped.
pub struct QueueHook {
    stop: Arc<AtomicBool>,
    rewritten: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

pub type Rewrite = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>> + Send>;

impl QueueHook {
    /// Queue `queue_num` fed by `rules` (iptables and ip6tables arguments after the tool).
    pub fn start(ns: &NetNs, queue_num: u16, rules: &[Vec<&str>], mut f: Rewrite) -> Self {
        let mut queue = ns
            .run(move || Queue::open(&QueueConfig::new(queue_num)).expect("open the test queue"))
            .unwrap();
        for tool in ["iptables", "ip6tables"] {
            for rule in rules {
                let mut args = vec![tool];
                args.extend_from_slice(rule);
                ns.run(|| super::sh(&args)).unwrap();
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let rewritten = Arc::new(AtomicUsize::new(0));
        let (stop2, rewritten2) = (stop.clone(), rewritten.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if !queue
                    .wait_readable(Some(Duration::from_millis(50)))
                    .unwrap()
                {
                    continue;
                }
                while let Some(packet) = queue.recv().unwrap() {
                    match f(&packet.payload) {
                        Some(new) => {
                            rewritten2.fetch_add(1, Ordering::Relaxed);
                            queue
                                .verdict(packet.id, Verdict::accept_with_payload(&new))
                                .unwrap();
                        }
                        None => queue.verdict(packet.id, Verdict::ACCEPT).unwrap(),
                    }
                }
            }
        });
        Self {
            stop,
            rewritten,
            thread: Some(thread),
        }
    }

    pub fn rewritten(&self) -> usize {
        self.rewritten.load(Ordering::Relaxed)
    }
}

impl Drop for QueueHook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
