//! An XGT (FEnet) load client for benchmarks: closed-loop individual reads of WORDS
//! word names (`%QW0`, `%QW1`, ...) over several connections, one request in flight per
//! connection. The counterpart of `modbus_load`, for comparing the two servers.
//!
//! Usage: xgt_load PORT [CONNECTIONS=4] [SECONDS=3] [WORDS=16] [DEVICE=Q]
//! Prints `requests_per_second=N errors=N`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use softplc_io::xgt::codec::{DataType, Name, Request, RequestFrame};
use softplc_io::xgt::header::{bcc, Header, HEADER_LEN};
use softplc_io::xgt::Cpu;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| {
        args.get(i)
            .map(|s| s.parse::<u64>().expect("a number"))
            .unwrap_or(d)
    };
    let port = arg(1, 2004) as u16;
    let conns = arg(2, 4) as usize;
    let secs = arg(3, 3);
    let words = arg(4, 16) as usize;
    let device = args.get(5).cloned().unwrap_or_else(|| "Q".to_string());
    let names: Vec<Name> = (0..words)
        .map(|i| Name::new(format!("%{device}W{i}").as_bytes()).expect("a name"))
        .collect();
    // The request is encoded once; each send patches its invoke ID and BCC.
    let request = RequestFrame {
        header: Header::request(Cpu::Xgi, 0),
        request: Request::Read {
            ty: DataType::Word,
            names,
        },
    }
    .encode()
    .expect("a request");
    // The answer: header, then command, type, reserved, status, count, n x (size, word).
    let want = HEADER_LEN + 10 + 4 * words;
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            let mut req = request.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = vec![0u8; want];
                let (mut n, mut errors) = (0u64, 0u64);
                let mut invoke = (c as u16) << 12;
                while Instant::now() < end {
                    invoke = invoke.wrapping_add(1);
                    req[14..16].copy_from_slice(&invoke.to_le_bytes());
                    let h: [u8; HEADER_LEN] = req[..HEADER_LEN].try_into().unwrap();
                    req[19] = bcc(&h);
                    if s.write_all(&req).is_err() || s.read_exact(&mut buf).is_err() {
                        errors += 1;
                        break;
                    }
                    // The invoke ID echoed, a read answer (0x55), error status 0.
                    if buf[14..16] != invoke.to_le_bytes()
                        || buf[20] != 0x55
                        || buf[26..28] != [0, 0]
                    {
                        errors += 1;
                    }
                    n += 1;
                }
                (n, errors)
            })
        })
        .collect();
    let (mut total, mut errors) = (0, 0);
    for w in workers {
        let (n, e) = w.join().unwrap();
        total += n;
        errors += e;
    }
    let rps = total as f64 / start.elapsed().as_secs_f64();
    println!("requests_per_second={rps:.0} errors={errors}");
}
