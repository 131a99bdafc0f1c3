import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HoldlineError, WIRE_ERRORS } from './errors.js';
import { answerError, closeReactionOf, reactionOf, WIRE_REACTIONS } from './reaction.js';

describe('answerError: a non-2xx answer as the client sees it', () => {
  it('our error body: its code and message, with the status', () => {
    const e = answerError(404, JSON.stringify({ error: { code: 'session_unknown', message: 'gone' } }));
    assert.ok(e instanceof HoldlineError);
    assert.equal(e.code, 'session_unknown');
    assert.equal(e.message, 'gone');
    assert.equal(e.status, 404);
    assert.equal(e.wireCode, undefined);
    assert.equal(reactionOf(e.code), 'new_session');
  });

  it('a body that is not ours (a proxy page): the status decides', () => {
    assert.equal(answerError(404, '<html>Not Found</html>').code, 'session_unknown');
    assert.equal(answerError(403, '').code, 'bad_credential');
    assert.equal(answerError(407, '').code, 'proxy_auth_required');
    assert.equal(answerError(410, '{}').code, 'session_closed');
    assert.equal(answerError(413, '<html>Too Large</html>').code, 'batch_too_large');
    const other = answerError(502, 'Bad Gateway');
    assert.equal(other.code, 'bad_response');
    assert.equal(other.status, 502);
    assert.equal(reactionOf(other.code), 'retry');
  });

  it('an error code this version does not know: bad_response, the code kept in wireCode, retried', () => {
    const e = answerError(404, JSON.stringify({ error: { code: 'session_moved', message: 'try node 2' } }));
    assert.equal(e.code, 'bad_response');
    assert.equal(e.wireCode, 'session_moved');
    assert.equal(e.status, 404);
    assert.match(e.message, /session_moved.*try node 2/);
    assert.equal(reactionOf(e.code), 'retry');
  });
});

describe('reactions', () => {
  it('every wire code has one; the requester codes have theirs', () => {
    assert.deepEqual(Object.keys(WIRE_REACTIONS).sort(), Object.keys(WIRE_ERRORS).sort());
    assert.equal(reactionOf('network_error'), 'retry');
    assert.equal(reactionOf('timeout'), 'retry');
    assert.equal(reactionOf('proxy_auth_required'), 'fatal');
    assert.equal(reactionOf('batch_too_large'), 'smaller_batches');
  });

  it('close frames: idle_timeout and server_shutdown open a new session; the rest stop, unknown ones too', () => {
    assert.equal(closeReactionOf('idle_timeout'), 'new_session');
    assert.equal(closeReactionOf('server_shutdown'), 'new_session');
    assert.equal(closeReactionOf('server_closed'), 'stop');
    assert.equal(closeReactionOf('__proto__'), 'stop');
    assert.equal(closeReactionOf('something_new'), 'stop');
  });
});
