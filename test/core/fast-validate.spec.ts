import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Type } from 'class-transformer';
import { IsBoolean, IsEmail, IsIn, IsInt, IsOptional, IsString, Length, Max, Min, ValidateIf, ValidateNested, validateSync } from 'class-validator';
import { certainlyValid } from '../../lib/fast-validate';

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

  it('leaves what it does not cover to validateSync', () => {
    const nested = Object.assign(new Nested(), { inner: Object.assign(new Inner(), { x: 'ok' }) });
    assert.equal(certainlyValid(nested), undefined);
    class NoMetadata {}
    assert.equal(certainlyValid(new NoMetadata()), undefined);
  });
});
