//! The server against hostile and malformed frames, and every function it implements.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{layout, Rig};
use softplc_core::{Area, IecType, Value};
use softplc_io::config::{parse, ServerConfig};
use softplc_io::ModbusServer;

fn rig(cfg: ServerConfig) -> (Rig, u16) {
    let l = layout(&[
        ("p.in0", Area::Input, IecType::Bool, "%IX0.0"),
        ("p.in1", Area::Input, IecType::Bool, "%IX0.1"),
        ("p.coil0", Area::Output, IecType::Bool, "%QX0.0"),
        ("p.coil9", Area::Output, IecType::Bool, "%QX1.1"),
        ("p.ir0", Area::Input, IecType::Int, "%IW4"),
        ("p.hr0", Area::Output, IecType::Uint, "%QW4"),
        ("p.hr9", Area::Output, IecType::Int, "%QW9"),
        ("p.m0", Area::Memory, IecType::Int, "%MW0"),
    ]);
    let r = Rig::new(l, vec![Box::new(ModbusServer::new("modbus-server", cfg))]);
    let port = r.status(0)["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (r, port)
}

fn default_rig() -> (Rig, u16) {
    rig(ServerConfig::with_default_map(
        "127.0.0.1:0".parse().unwrap(),
        1,
    ))
}

/// Sends one ADU and returns the reply (None: connection closed without one).
fn exchange(s: &mut TcpStream, unit: u8, pdu: &[u8]) -> Option<Vec<u8>> {
    let mut adu = vec![0x12, 0x34, 0, 0];
    adu.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    adu.push(unit);
    adu.extend_from_slice(pdu);
    s.write_all(&adu).ok()?;
    read_reply(s)
}

fn read_reply(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut hdr = [0u8; 7];
    s.read_exact(&mut hdr).ok()?;
    let len = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    let mut pdu = vec![0u8; len - 1];
    s.read_exact(&mut pdu).ok()?;
    assert_eq!(&hdr[..2], &[0x12, 0x34], "transaction id echoed");
    Some(pdu)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Cycles the rig on a thread while `f` talks to the server.
fn with_scan<R>(rig: &mut Rig, f: impl FnOnce() -> R + Send) -> R
where
    R: Send,
{
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        let h = sc.spawn(f);
        while !h.is_finished() {
            rig.cycle();
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap()
    })
}

#[test]
fn malformed_requests_get_the_right_exception_and_the_connection_survives() {
    let (mut r, port) = default_rig();
    with_scan(&mut r, || {
        let mut s = connect(port);
        // Unknown and reserved function codes: illegal function.
        assert_eq!(
            exchange(&mut s, 1, &[0x2B, 0x0E, 1, 0]).unwrap(),
            vec![0xAB, 0x01]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x08, 0, 0, 0x12, 0x34]).unwrap(),
            vec![0x88, 0x01]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x83, 0, 0, 0, 1]).unwrap(),
            vec![0x83, 0x01]
        );
        // Quantity 0 and 126: illegal data value; past the table (8192 holding
        // registers, OpenPLC's size): illegal data address.
        assert_eq!(
            exchange(&mut s, 1, &[0x03, 0, 0, 0, 0]).unwrap(),
            vec![0x83, 0x03]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x03, 0, 0, 0, 126]).unwrap(),
            vec![0x83, 0x03]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x03, 0x20, 0x00, 0, 1]).unwrap(),
            vec![0x83, 0x02]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x03, 0x1F, 0xFF, 0, 2]).unwrap(),
            vec![0x83, 0x02]
        );
        // An unbound register inside the table reads 0.
        assert_eq!(
            exchange(&mut s, 1, &[0x03, 0x04, 0x01, 0, 1]).unwrap(),
            vec![0x03, 2, 0, 0]
        );
        // A truncated request and a coil value that is neither 0 nor 0xFF00.
        assert_eq!(
            exchange(&mut s, 1, &[0x03, 0, 0]).unwrap(),
            vec![0x83, 0x03]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x05, 0, 0, 0x12, 0x34]).unwrap(),
            vec![0x85, 0x03]
        );
        // Write Multiple Coils whose quantity exceeds its data (crashes an unguarded decoder).
        assert_eq!(
            exchange(&mut s, 1, &[0x0F, 0, 0, 0, 100, 1, 0xFF]).unwrap(),
            vec![0x8F, 0x03]
        );
        // Byte count not matching the quantity.
        assert_eq!(
            exchange(&mut s, 1, &[0x10, 0, 0, 0, 2, 3, 0, 1, 0]).unwrap(),
            vec![0x90, 0x03]
        );
        // Another unit id: gateway target failed to respond, whatever the PDU (the
        // unit is checked first).
        assert_eq!(
            exchange(&mut s, 7, &[0x03, 0, 0, 0, 1]).unwrap(),
            vec![0x83, 0x0B]
        );
        assert_eq!(exchange(&mut s, 7, &[0x08]).unwrap(), vec![0x88, 0x0B]);
        assert_eq!(
            exchange(&mut s, 7, &[0x03, 0, 0, 0, 0]).unwrap(),
            vec![0x83, 0x0B]
        );
        // Units 0 and 255 are the server itself on Modbus TCP: answered.
        for unit in [0, 255] {
            let ok = exchange(&mut s, unit, &[0x03, 0, 0, 0, 1]).unwrap();
            assert_eq!(ok[..2], [0x03, 2], "unit {unit}");
            assert_eq!(
                exchange(&mut s, unit, &[0x03, 0, 0, 0, 0]).unwrap(),
                vec![0x83, 0x03]
            );
        }
        // And the connection still serves good requests.
        let ok = exchange(&mut s, 1, &[0x03, 0, 0, 0, 1]).unwrap();
        assert_eq!(ok[..2], [0x03, 2]);
    });
    let st = r.status(0);
    assert_eq!(st["exceptions"]["illegal_function"], 3, "{st}");
    assert_eq!(st["exceptions"]["illegal_data_value"], 8, "{st}");
    assert_eq!(st["exceptions"]["illegal_data_address"], 2, "{st}");
    assert_eq!(st["exceptions"]["gateway_target"], 3, "{st}");
    assert_eq!(st["wrong_unit"], 3, "{st}");
}

#[test]
fn undelimitable_streams_are_closed_and_the_server_keeps_serving() {
    let (mut r, port) = default_rig();
    with_scan(&mut r, || {
        // Protocol id 1.
        let mut s = connect(port);
        s.write_all(&[0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1]).unwrap();
        assert!(read_reply(&mut s).is_none());
        // A length field of 0 and one of 300.
        for len in [0u16, 300] {
            let mut s = connect(port);
            let mut f = vec![0, 1, 0, 0];
            f.extend_from_slice(&len.to_be_bytes());
            f.extend_from_slice(&[1, 3, 0, 0, 0, 1]);
            s.write_all(&f).unwrap();
            assert!(read_reply(&mut s).is_none());
        }
        // Plain garbage.
        let mut s = connect(port);
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(read_reply(&mut s).is_none());
        // A fresh connection works.
        let mut s = connect(port);
        assert_eq!(
            exchange(&mut s, 1, &[0x01, 0, 0, 0, 10]).unwrap()[..2],
            [0x01, 2]
        );
    });
    assert!(r.status(0)["closed_malformed"].as_u64().unwrap() >= 4);
}

#[test]
fn pipelined_requests_split_at_odd_places_are_answered_in_order() {
    let (mut r, port) = default_rig();
    r.set("p.hr0", Value::UInt(IecType::Uint, 0xBEEF));
    r.cycle();
    with_scan(&mut r, || {
        let mut s = connect(port);
        let good = [0x12, 0x34, 0, 0, 0, 6, 1, 0x03, 0, 4, 0, 1];
        let bad = [0x12, 0x34, 0, 0, 0, 6, 1, 0x03, 0, 0, 0, 0];
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(&good);
            stream.extend_from_slice(&bad);
        }
        for chunk in stream.chunks(5) {
            s.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        for _ in 0..3 {
            assert_eq!(read_reply(&mut s).unwrap(), vec![0x03, 2, 0xBE, 0xEF]);
            assert_eq!(read_reply(&mut s).unwrap(), vec![0x83, 0x03]);
        }
    });
}

#[test]
fn every_function_reads_and_writes_the_image() {
    let (mut r, port) = default_rig();
    r.set("p.in1", Value::Bool(true));
    r.set("p.ir0", Value::Int(IecType::Int, -5));
    r.cycle();
    with_scan(&mut r, || {
        let mut s = connect(port);
        assert_eq!(
            exchange(&mut s, 1, &[0x02, 0, 0, 0, 2]).unwrap(),
            vec![0x02, 1, 0b10]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x04, 0, 4, 0, 1]).unwrap(),
            vec![0x04, 2, 0xFF, 0xFB]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x05, 0, 9, 0xFF, 0]).unwrap(),
            vec![0x05, 0, 9, 0xFF, 0]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x06, 0, 4, 0x12, 0x34]).unwrap(),
            vec![0x06, 0, 4, 0x12, 0x34]
        );
        // Read back at once: the client sees its own write before the scan applied it.
        assert_eq!(
            exchange(&mut s, 1, &[0x03, 0, 4, 0, 1]).unwrap(),
            vec![0x03, 2, 0x12, 0x34]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x0F, 0, 0, 0, 2, 1, 0b01]).unwrap(),
            vec![0x0F, 0, 0, 0, 2]
        );
        assert_eq!(
            exchange(&mut s, 1, &[0x10, 0x04, 0x00, 0, 1, 2, 0, 77]).unwrap(),
            vec![0x10, 4, 0, 0, 1]
        );
        // Mask write: (0x1234 & 0x00FF) | (0x5600 & !0x00FF) = 0x5634.
        assert_eq!(
            exchange(&mut s, 1, &[0x16, 0, 4, 0x00, 0xFF, 0x56, 0x00]).unwrap(),
            vec![0x16, 0, 4, 0x00, 0xFF, 0x56, 0x00]
        );
        // Read/write: write hr9 = 7, read hr8..hr9.
        assert_eq!(
            exchange(&mut s, 1, &[0x17, 0, 8, 0, 2, 0, 9, 0, 1, 2, 0, 7]).unwrap(),
            vec![0x17, 4, 0, 0, 0, 7]
        );
        // Discrete inputs and input registers are read-only in Modbus itself.
        assert_eq!(
            exchange(&mut s, 1, &[0x01, 0, 0, 0, 10]).unwrap()[..2],
            [0x01, 2]
        );
    });
    // Let the scan apply everything.
    for _ in 0..3 {
        r.cycle();
    }
    assert_eq!(r.get("p.coil9"), Value::Bool(true));
    assert_eq!(r.get("p.coil0"), Value::Bool(true));
    assert_eq!(r.get("p.hr0"), Value::UInt(IecType::Uint, 0x5634));
    assert_eq!(r.get("p.hr9"), Value::Int(IecType::Int, 7));
    assert_eq!(r.get("p.m0"), Value::Int(IecType::Int, 77));
}

#[test]
fn read_only_tables_allowlists_and_connection_limits() {
    let cfg = parse(
        "s.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\nread_only = [\"holding_register\"]\nmax_connections = 2\n",
    )
    .unwrap()
    .server
    .unwrap();
    let (mut r, port) = rig(cfg);
    with_scan(&mut r, || {
        let mut s = connect(port);
        assert_eq!(
            exchange(&mut s, 1, &[0x06, 0, 0, 0, 1]).unwrap(),
            vec![0x86, 0x01]
        );
        let mut s2 = connect(port);
        assert!(exchange(&mut s2, 1, &[0x03, 0, 0, 0, 1]).is_some());
        // A third connection is over the limit: its request is answered with exception
        // 06 (server device busy), then it is closed.
        let mut s3 = connect(port);
        assert_eq!(
            exchange(&mut s3, 1, &[0x03, 0, 0, 0, 1]).unwrap(),
            vec![0x83, 0x06]
        );
        assert!(exchange(&mut s3, 1, &[0x03, 0, 0, 0, 1]).is_none());
        drop((s, s2));
    });
    assert_eq!(r.status(0)["refused_limit"], 1);

    let cfg = parse(
        "s.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\nallow = [\"10.0.0.0/8\"]\n",
    )
    .unwrap()
    .server
    .unwrap();
    let (mut r, port) = rig(cfg);
    with_scan(&mut r, || {
        let mut s = connect(port);
        assert!(exchange(&mut s, 1, &[0x03, 0, 0, 0, 1]).is_none());
    });
    assert_eq!(r.status(0)["refused_allowlist"], 1);
    assert!(r.events().iter().any(|e| e.text.contains("allowlist")));
}

#[test]
fn idle_connections_are_closed() {
    let cfg = parse(
        "s.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\nidle_timeout_ms = 100\n",
    )
    .unwrap()
    .server
    .unwrap();
    let (mut r, port) = rig(cfg);
    with_scan(&mut r, || {
        let mut s = connect(port);
        // Half a request, then silence.
        s.write_all(&[0, 1, 0, 0, 0]).unwrap();
        let t = std::time::Instant::now();
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).unwrap_or(0), 0);
        assert!(t.elapsed() < Duration::from_secs(1));
    });
    assert_eq!(r.status(0)["closed_idle"], 1);
}
