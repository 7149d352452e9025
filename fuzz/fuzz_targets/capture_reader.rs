//! Fuzzes the capture inspector end to end: the pcap/pcapng reader, link-layer decoding, TCP
//! reassembly, ENO analysis and frame walking. No input may panic or hang; a capture either
//! fails with a typed error or yields a report that renders as text and JSON, and whatever is
//! read is read the same way twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcrypt_inspect::{capture, inspect};

fuzz_target!(|data: &[u8]| {
    let first = capture::read(data);
    assert_eq!(first, capture::read(data));
    if let Ok(c) = &first {
        for r in &c.records {
            assert!(r.data.len() <= capture::MAX_RECORD_LEN);
            let _ = capture::ip_payload(r.link, &r.data);
        }
    }
    match inspect(data, None) {
        Ok(ins) => {
            assert_eq!(
                ins.report.capture.records as usize,
                first.map(|c| c.records.len()).unwrap_or(0)
            );
            let _ = ins.report.to_text();
            let json = ins.report.to_json();
            assert!(json.starts_with('{'));
        }
        Err(e) => assert_eq!(Err(e), first.map(|_| ())),
    }
});
