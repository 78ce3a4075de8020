import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { Type } from 'class-transformer';
import { IsBoolean, IsEmail, IsIn, IsInt, IsOptional, IsString, Length, Max, Min, ValidateIf, ValidateNested, validateSync } from 'class-validator';
import { certainlyValid } from '../../lib/fast-validate';
import { answers } from '../helpers/fast-validate-cases';

const VALIDATION = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

class Flat {
  @IsString() @Length(1, 8) id!: string;
  @IsInt() @Min(0) @Max(100) n!: number;
  @IsOptional() @IsIn(['a', 'b']) kind?: string;
  @IsBoolean() flag!: boolean;
  @ValidateIf((o: Flat) => o.flag) @IsEmail() email?: string;
}
class Inner {
  @IsString() x!: string;
}
class Nested {
  @ValidateNested() @Type(() => Inner) inner!: Inner;
}

const values = fc.oneof(fc.string({ maxLength: 10 }), fc.integer({ min: -5, max: 120 }), fc.boolean(), fc.constant(undefined), fc.constant(null), fc.constantFrom('a', 'b', 'c', 'x@y.io'));

describe('fast validation', () => {
  it('never says valid when validateSync finds a violation (20,000 random objects)', () => {
    let fastYes = 0;
    fc.assert(
      fc.property(
        fc.record(
          {
            id: fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), values),
            n: fc.oneof(fc.integer({ min: 0, max: 100 }), values),
            kind: values,
            flag: fc.oneof(fc.boolean(), values),
            email: values,
            extra: values,
          },
          { requiredKeys: ['id', 'n', 'flag'] },
        ),
        (data) => {
          const instance = Object.assign(new Flat(), data);
          const errors = validateSync(instance, VALIDATION);
          const fast = certainlyValid(instance);
          if (fast) fastYes++;
          assert.ok(!(fast === true && errors.length > 0), `fast path accepted ${JSON.stringify(data)}: ${errors.map(String)}`);
          if (errors.length === 0) assert.equal(fast, true, `fast path should accept ${JSON.stringify(data)}`);
        },
      ),
      { numRuns: 20_000, seed: 7 },
    );
    assert.ok(fastYes > 100, `valid objects were generated (${fastYes})`);
  });

  it('agrees with validateSync on the edge values of every constraint it has a fast yes for', () => {
    const all = answers();
    const wrong = all.filter((a) => a.fast && !a.valid);
    assert.deepEqual(wrong, [], 'fast path accepted what validateSync refuses');
    const missed = all.filter((a) => a.valid && !a.fast);
    assert.deepEqual(missed, [], 'fast path did not accept what validateSync accepts');
    // The edges must reach both answers for the test to mean anything.
    assert.ok(all.filter((a) => a.valid).length > 100 && all.filter((a) => !a.valid).length > 300, `valid ${all.filter((a) => a.valid).length} of ${all.length}`);
    // Spot checks of the delicate ones, against class-validator's own answers.
    const valid = (property: string, value: string) => all.find((a) => a.property === property && a.value === value)!.valid;
    assert.equal(valid('sparse', 'undefined'), false); // a hole is no undefined entry for `some`
    assert.equal(valid('withUndefined', 'undefined'), true);
    assert.equal(valid('withUndefined', 'NaN'), false); // NaN !== NaN
    assert.equal(valid('anyNumber', 'NaN'), true);
    assert.equal(valid('n', 'Infinity'), false);
    assert.equal(valid('decimals', '2.25'), false);
    assert.equal(valid('optional', 'String(abc)'), true); // isString takes a String object
    assert.equal(valid('s', 'String(abc)'), false); // length does not
    assert.equal(valid('s', JSON.stringify('a\u{1F600}')), true); // three code units, two characters
    assert.equal(valid('global', '"x"'), true);
  });

  it('gives the same answers where code cannot be generated (node --disallow-code-generation-from-strings)', function () {
    this.timeout(60_000);
    const script = path.join(__dirname, '../helpers/fast-validate-cases.ts');
    const out = execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '-r', 'ts-node/register/transpile-only', script], {
      encoding: 'utf8', timeout: 50_000, cwd: path.join(__dirname, '../..'),
    });
    assert.deepEqual(JSON.parse(out), answers());
  });

  it('leaves what it does not cover to validateSync', () => {
    const nested = Object.assign(new Nested(), { inner: Object.assign(new Inner(), { x: 'ok' }) });
    assert.equal(certainlyValid(nested), undefined);
    class NoMetadata {}
    assert.equal(certainlyValid(new NoMetadata()), undefined);
  });
});
