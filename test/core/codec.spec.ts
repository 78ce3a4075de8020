import assert from 'node:assert/strict';
import { Type } from 'class-transformer';
import { IsInt, IsString, ValidateNested } from 'class-validator';
import { Message, MalformedMessageError, PayloadValidationError } from '../../lib';
import { encode, parseJson, validatePayload } from '../../lib/codec';
import { isoNow } from '../../lib/iso-time';
import { Headers } from '../../lib/transport';

class Line {
  @IsString() sku!: string;
  @IsInt() quantity!: number;
}

@Message('order.with-lines')
class OrderWithLines {
  @IsString() orderId!: string;
  @ValidateNested({ each: true }) @Type(() => Line) lines!: Line[];
}

@Message('flat')
class Flat {
  @IsString() a!: string;
}

describe('codec', () => {
  it('nested payloads go through class-transformer: instances inside, violations with paths', () => {
    const ok = validatePayload(OrderWithLines, 'order.with-lines', { orderId: 'o', lines: [{ sku: 's', quantity: 1 }] });
    assert.ok(ok.lines[0] instanceof Line);
    const err = (() => {
      try {
        validatePayload(OrderWithLines, 'order.with-lines', { orderId: 'o', lines: [{ sku: 1, quantity: 'x' }] });
      } catch (e) {
        return e as PayloadValidationError;
      }
    })();
    assert.ok(err instanceof PayloadValidationError);
    assert.deepEqual(err.violations.map((v) => v.property).sort(), ['lines.0.quantity', 'lines.0.sku']);
  });

  it('flat payloads: an instance of the class, unknown and forbidden properties refused', () => {
    assert.ok(validatePayload(Flat, 'flat', { a: 'x' }) instanceof Flat);
    assert.throws(() => validatePayload(Flat, 'flat', { a: 'x', b: 1 }), PayloadValidationError);
    assert.throws(() => validatePayload(Flat, 'flat', JSON.parse('{"a":"x","__proto__":{"p":1}}')), PayloadValidationError);
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const err = (() => {
        try {
          validatePayload(Flat, 'flat', JSON.parse(`{"a":"x",${JSON.stringify(key)}:{"p":1}}`));
        } catch (e) {
          return e as PayloadValidationError;
        }
      })();
      assert.ok(err instanceof PayloadValidationError, key);
      assert.deepEqual(err.violations.map((v) => v.property), [key]);
    }
    const copy = validatePayload(Flat, 'flat', JSON.parse('{"a":"x"}'));
    assert.equal(Object.getPrototypeOf(copy), Flat.prototype);
    assert.deepEqual(Object.keys(copy), ['a']);
    assert.throws(() => validatePayload(Flat, 'flat', [] as never), PayloadValidationError);
  });

  it('parseJson refuses prototype keys, also when spelled with escapes', () => {
    assert.deepEqual(parseJson('{"a":1}'), { a: 1 });
    for (const text of ['{"__proto__":{}}', '{"a":{"constructor":{}}}', '{"\\u005f_proto__":{}}', '{"prototype" : 1}']) {
      assert.throws(() => parseJson(text), MalformedMessageError, text);
    }
    assert.deepEqual(parseJson('{"s":"caf\\u00e9"}'), { s: 'café' });
    assert.equal(({} as Record<string, unknown>).p, undefined);
  });

  it('encode: the envelope headers under their Headers names; extra headers are added and never replace them', () => {
    const plain = encode({ n: 1 }, { type: 'order.placed', source: 'orders' });
    assert.deepEqual(Object.keys(plain.headers).sort(), [Headers.attempt, Headers.correlationid, Headers.datacontenttype, Headers.id, Headers.source, Headers.specversion, Headers.time, Headers.type].sort());
    assert.equal(plain.headers[Headers.correlationid], plain.headers[Headers.id]);
    assert.equal(plain.headers[Headers.attempt], '1');
    const extra = encode({ n: 1 }, { type: 'order.placed', source: 'orders', extraHeaders: { [Headers.id]: 'forged', [Headers.source]: 'forged', tenant: 'acme' } });
    assert.notEqual(extra.headers[Headers.id], 'forged');
    assert.equal(extra.headers[Headers.source], 'orders');
    assert.equal(extra.headers.tenant, 'acme');
    assert.equal(String(extra.body), '{"n":1}');
  });
  it('isoNow() is Date#toISOString(), across milliseconds, seconds, days and years', () => {
    const starts = [0, 999, 1000, 59_999, Date.UTC(2026, 11, 31, 23, 59, 59, 998), Date.now()];
    for (const start of starts) {
      for (let ms = start; ms < start + 1_500; ms += 7) assert.equal(isoNow(ms), new Date(ms).toISOString(), String(ms));
      for (const ms of [start + 3, start + 1, start + 3]) assert.equal(isoNow(ms), new Date(ms).toISOString(), `${ms}, again`);
    }
  });
});
