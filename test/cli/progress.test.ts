// Progress off a terminal (a log, a pipe): a line when what it says changes, not every countdown tick.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Progress } from '../../src/cli/output.js';

function pipe(): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (text: string) => lines.push(text) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, lines };
}

test('off a terminal, countdown ticks with the same figures print once per quiet period', () => {
  const { stream, lines } = pipe();
  const progress = new Progress(stream, 60_000);
  for (let s = 300; s > 100; s--) progress.update(`prod-a draining: 0 in flight, deadline in ${s}s`, '0 in flight');
  assert.deepEqual(lines, ['prod-a draining: 0 in flight, deadline in 300s\n']);
  progress.update('prod-a draining: 2 in flight, deadline in 99s', '2 in flight');
  assert.equal(lines.length, 2, 'a change of figures is printed at once');
});

test('off a terminal, a quiet period that passed prints the line again', () => {
  const { stream, lines } = pipe();
  const progress = new Progress(stream, 0);
  progress.update('a 3s', 'same');
  progress.update('a 2s', 'same');
  assert.equal(lines.length, 2);
});
