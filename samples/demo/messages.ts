/** The demo's own control messages: how the driver asks every service instance for its state. */
import { IsIn, IsInt, IsString, Matches, Min } from 'class-validator';
import { Message } from 'courier-bus';

/** Broadcast to every instance of every service. */
@Message('demo.report-requested')
export class ReportRequested {
  @Matches(/^[A-Za-z0-9_.:-]{1,100}$/) requestId!: string;
  /** Orders and reservations are counted for ids starting with this (the run's id). */
  @Matches(/^[A-Za-z0-9_.:-]{0,100}$/) orderPrefix!: string;
}

@Message('demo.service-report')
export class ServiceReport {
  @Matches(/^[A-Za-z0-9_.:-]{1,100}$/) requestId!: string;
  @IsIn(['product', 'order']) role!: 'product' | 'order';
  @IsString() instance!: string;
  /** Messages this instance's bus published so far. */
  @IsInt() @Min(0) published!: number;
  /** The role's state, as JSON (see ProductReport / OrderReport in reporter.ts). */
  @IsString() state!: string;
}
