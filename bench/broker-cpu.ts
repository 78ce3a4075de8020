/**
 * RabbitMQ's own CPU while a side runs (issue 19, point 3: what the topology costs the broker per
 * message): the user + system time of every `beam.smp` process on this machine, from /proc. A
 * broker in a local container is a process here too; a remote broker reads as unavailable.
 */
import fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`: 100 on Linux x86_64). */
const TICKS_PER_SECOND = 100;

/** CPU milliseconds used so far by each RabbitMQ (beam.smp) process, by pid; undefined without /proc or a broker. */
export function brokerCpuMs(): Map<string, number> | undefined {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  const out = new Map<string, number>();
  for (const pid of pids) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'beam.smp') continue;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND);
    } catch {
      // the process ended meanwhile
    }
  }
  return out.size ? out : undefined;
}

/** CPU milliseconds the broker processes alive at both readings used between them. */
export function brokerCpuDelta(before: Map<string, number>, after: Map<string, number>): number {
  let ms = 0;
  for (const [pid, t] of after) {
    const t0 = before.get(pid);
    if (t0 !== undefined && t >= t0) ms += t - t0;
  }
  return ms;
}
