// Sessions bound to members, with last-seen times, so a drain can wait for users to finish. A session is
// tracked from when its member issued it (SessionObserver), never from a client's say-so. Memory is
// bounded: past `max` entries the least recently seen session is evicted (and counted).
import type { MemberKey } from '../model.js';
import type { SessionObserver } from '../proxy/handle.js';

interface Binding {
  member: MemberKey;
  lastSeen: number;
}

export interface BoundSessions {
  /** Sessions seen within the idle window. */
  active: number;
  /** Milliseconds since the least recently seen active session was seen (0 when none). */
  oldestIdleMs: number;
}

/** A tracked session as handed to the next generation at an upgrade. */
export interface SessionEntry {
  key: string;
  member: MemberKey;
  lastSeen: number;
}

export class SessionTracker implements SessionObserver {
  /** Map order is recency order: a seen session is moved to the end. */
  private readonly sessions = new Map<string, Binding>();
  evictions = 0;

  constructor(private readonly max: number) {}

  seen(member: MemberKey, session: string, now: number): void {
    const key = `${member}\n${session}`;
    const binding = this.sessions.get(key);
    if (binding) this.refresh(key, binding, now);
  }

  issued(member: MemberKey, session: string, now: number): void {
    const key = `${member}\n${session}`;
    const binding = this.sessions.get(key);
    if (binding) {
      this.refresh(key, binding, now);
      return;
    }
    this.sessions.set(key, { member, lastSeen: now });
    if (this.sessions.size > this.max) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
      this.evictions++;
    }
  }

  /** Moves a seen session to the end (the most recently seen). */
  private refresh(key: string, binding: Binding, now: number): void {
    this.sessions.delete(key);
    binding.lastSeen = now;
    this.sessions.set(key, binding);
  }

  /** Every session, least recently seen first: what the next generation takes over at an upgrade. */
  entries(): SessionEntry[] {
    return [...this.sessions].map(([key, b]) => ({ key, member: b.member, lastSeen: b.lastSeen }));
  }

  /** Takes over the sessions of a previous generation (entries() order), before any of this one's. */
  adopt(entries: SessionEntry[]): void {
    const own = [...this.sessions];
    this.sessions.clear();
    for (const e of entries.slice(-this.max)) this.sessions.set(e.key, { member: e.member, lastSeen: e.lastSeen });
    for (const [key, binding] of own) {
      this.sessions.delete(key);
      this.sessions.set(key, binding);
    }
    while (this.sessions.size > this.max) this.sessions.delete(this.sessions.keys().next().value as string);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Active sessions per member, seen within idleMs of now. */
  byMember(now: number, idleMs: number): Map<MemberKey, BoundSessions> {
    const result = new Map<MemberKey, BoundSessions>();
    for (const binding of this.sessions.values()) {
      const idle = now - binding.lastSeen;
      if (idle > idleMs) continue;
      const entry = result.get(binding.member);
      if (entry) {
        entry.active++;
        entry.oldestIdleMs = Math.max(entry.oldestIdleMs, idle);
      } else {
        result.set(binding.member, { active: 1, oldestIdleMs: idle });
      }
    }
    return result;
  }

  /** Forgets sessions not seen for longer than idleMs (called periodically, off the hot path). */
  prune(now: number, idleMs: number): void {
    for (const [key, binding] of this.sessions) {
      if (now - binding.lastSeen <= idleMs) break;
      this.sessions.delete(key);
    }
  }
}
