/**
 * NTLM messages against MS-NLMP's own test vectors (section 4.2.4, NTLMv2:
 * User / Domain / Password, server challenge 0123456789abcdef, client
 * challenge aa * 8, time 0) and MD4 against RFC 1320's test suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { md4 } from './md4.js';
import { ntlmType1, ntlmType3, parseNtlmType2 } from './ntlm.js';

test('MD4: the RFC 1320 test suite', () => {
  const suite: [string, string][] = [
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ];
  for (const [input, digest] of suite) assert.equal(md4(Buffer.from(input, 'latin1')).toString('hex'), digest, JSON.stringify(input));
});

/** A Type 2 as MS-NLMP 4.2.4.3 has it: Unicode, target "Domain", AV pairs NbDomainName=Domain, NbComputerName=Server. */
function type2(): string {
  const name = Buffer.from('Domain', 'utf16le');
  const info = Buffer.concat([
    Buffer.from([2, 0, 12, 0]), Buffer.from('Domain', 'utf16le'),
    Buffer.from([1, 0, 12, 0]), Buffer.from('Server', 'utf16le'),
    Buffer.from([0, 0, 0, 0]),
  ]);
  const head = Buffer.alloc(48);
  head.write('NTLMSSP\0', 0, 'latin1');
  head.writeUInt32LE(2, 8);
  head.writeUInt16LE(name.length, 12);
  head.writeUInt16LE(name.length, 14);
  head.writeUInt32LE(48, 16);
  head.writeUInt32LE(0xe28a8233, 20);
  Buffer.from('0123456789abcdef', 'hex').copy(head, 24);
  head.writeUInt16LE(info.length, 40);
  head.writeUInt16LE(info.length, 42);
  head.writeUInt32LE(48 + name.length, 44);
  return Buffer.concat([head, name, info]).toString('base64');
}

test('NTLMv2: the Type 3 carries the MS-NLMP 4.2.4 NTProofStr and LMv2 response', () => {
  const challenge = parseNtlmType2(type2());
  assert.equal(challenge.targetName, 'Domain');
  const msg = Buffer.from(ntlmType3({ user: 'User', password: 'Password', domain: 'Domain', workstation: 'COMPUTER' }, challenge, Buffer.alloc(8, 0xaa), -11_644_473_600_000), 'base64');
  assert.equal(msg.subarray(0, 8).toString('latin1'), 'NTLMSSP\0');
  assert.equal(msg.readUInt32LE(8), 3);
  const field = (at: number): Buffer => msg.subarray(msg.readUInt32LE(at + 4), msg.readUInt32LE(at + 4) + msg.readUInt16LE(at));
  assert.equal(field(12).toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa', 'LMv2 response');
  assert.equal(field(20).subarray(0, 16).toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c', 'NTProofStr');
  assert.equal(field(36).toString('utf16le'), 'User');
  assert.equal(field(28).toString('utf16le'), 'Domain');
});

test('Type 1 is a well-formed negotiate; a Type 2 that is not one throws', () => {
  const t1 = Buffer.from(ntlmType1(), 'base64');
  assert.equal(t1.subarray(0, 8).toString('latin1'), 'NTLMSSP\0');
  assert.equal(t1.readUInt32LE(8), 1);
  assert.throws(() => parseNtlmType2(Buffer.from('hello world, not ntlm at all!!!!').toString('base64')), RangeError);
  assert.throws(() => parseNtlmType2(ntlmType1()), /type 1/);
});
