//! A Modbus TCP load client for benchmarks: closed-loop FC3 reads over several
//! connections, one request in flight per connection.
//!
//! Usage: modbus_load PORT [CONNECTIONS=4] [SECONDS=3] [REGISTERS=100] [CPU]
//! Prints `requests_per_second=N errors=N`. With CPU, every connection thread is
//! pinned to that CPU.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; the call affects
    // only the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| {
        args.get(i)
            .map(|s| s.parse::<u64>().expect("a number"))
            .unwrap_or(d)
    };
    let port = arg(1, 502) as u16;
    let conns = arg(2, 4) as usize;
    let secs = arg(3, 3);
    let regs = arg(4, 100) as u16;
    let cpu = args
        .get(5)
        .map(|s| s.parse::<usize>().expect("a CPU number"));
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            std::thread::spawn(move || {
                if let Some(cpu) = cpu {
                    pin(cpu);
                }
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let want = 9 + 2 * regs as usize;
                let mut buf = vec![0u8; want];
                let (mut n, mut errors) = (0u64, 0u64);
                let mut tid = (c as u16) << 12;
                while Instant::now() < end {
                    tid = tid.wrapping_add(1);
                    let t = tid.to_be_bytes();
                    let r = regs.to_be_bytes();
                    let req = [t[0], t[1], 0, 0, 0, 6, 1, 3, 0, 0, r[0], r[1]];
                    if s.write_all(&req).is_err() || s.read_exact(&mut buf).is_err() {
                        errors += 1;
                        break;
                    }
                    if buf[..2] != t || buf[7] != 3 {
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
