import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HoldAdvisor } from './hold-advisor.js';

test('one cut changes nothing; two at about the same age lower the hold below that age', () => {
  const a = new HoldAdvisor(25_000);
  a.cut(10_200, 25_000);
  assert.equal(a.holdMs, 25_000);
  a.cut(10_050, 25_000);
  assert.ok(a.holdMs < 10_050 && a.holdMs >= 1_000, `hold ${a.holdMs}`);
});

test('cuts at different ages, or past the hold (a black hole), do not lower it', () => {
  const a = new HoldAdvisor(25_000);
  a.cut(3_000, 25_000);
  a.cut(12_000, 25_000);
  assert.equal(a.holdMs, 25_000);
  const b = new HoldAdvisor(25_000);
  b.cut(30_000, 25_000);
  b.cut(30_000, 25_000);
  assert.equal(b.holdMs, 25_000);
});

test('when cuts stop, full holds probe back up to the configured hold', () => {
  const a = new HoldAdvisor(25_000);
  a.cut(10_000, 25_000);
  a.cut(10_000, 25_000);
  const lowered = a.holdMs;
  for (let i = 0; i < 4; i++) a.fullHold();
  assert.equal(a.holdMs, lowered, 'no probe before five full holds');
  for (let i = 0; i < 200 && a.holdMs < 25_000; i++) a.fullHold();
  assert.equal(a.holdMs, 25_000);
});

test('a cut resets the run of full holds', () => {
  const a = new HoldAdvisor(20_000);
  a.cut(8_000, 20_000);
  a.cut(8_000, 20_000);
  const lowered = a.holdMs;
  for (let i = 0; i < 4; i++) a.fullHold();
  a.cut(2_000, lowered);
  for (let i = 0; i < 4; i++) a.fullHold();
  assert.equal(a.holdMs, lowered);
});

test('reconfigure caps the hold at a new session limit', () => {
  const a = new HoldAdvisor(25_000);
  a.reconfigure(5_000);
  assert.equal(a.holdMs, 5_000);
  assert.equal(a.configuredMs, 5_000);
});

test('one silent death lowers the hold at once, well under the age it died below', () => {
  const a = new HoldAdvisor(25_000);
  a.silentDeath(25_000);
  assert.ok(a.holdMs <= 6_250 && a.holdMs >= 1_000, `hold ${a.holdMs}`);
  assert.equal(a.ceilingMs, 25_000);
  a.silentDeath(10_000);
  assert.ok(a.holdMs <= 2_500, `a tighter bound lowers it further: ${a.holdMs}`);
  assert.equal(a.ceilingMs, 10_000);
});

test('after a silent death, no probing until the bound is forgotten', () => {
  let now = 0;
  const a = new HoldAdvisor(25_000, () => now);
  a.silentDeath(10_000);
  for (let i = 0; i < 200; i++) a.fullHold();
  assert.equal(a.holdMs, 2_500, 'a probe past the limit would die silently too');
  now += 11 * 60_000;
  assert.equal(a.ceilingMs, 0);
  for (let i = 0; i < 200 && a.holdMs < 25_000; i++) a.fullHold();
  assert.equal(a.holdMs, 25_000, 'later, probing goes back up to the configured hold');
});
