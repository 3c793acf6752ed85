/*
 * The slice protocol of scale-out (src/scale/), for the SPIN model checker.
 *
 * Names follow the code: a slice Lease is Pending, Running or Done (SliceLeaseState); a worker
 * is Claiming (worker::step), Copying (worker::slice_task with its renew_loop) and Released
 * (SliceHold::release); the leader is Following (planner::Planner::follow) then Finalizing
 * (workflow: restore, verify). Every Lease write is conditional on the resourceVersion (rv) the
 * writer last saw. A holder may write to the destination only while its budget lasts (the
 * gate checked before every bulk); the budget can lapse at any moment (a pause, a slow API
 * server, a crash). A successor judges a Lease expired only after the holder's record stayed
 * unchanged for a full lease duration, which is longer than the budget of the holder's last
 * renewal: modelled as "expired only once the holder's budget has lapsed".
 *
 * Checked: never two writers of one slice (every bulk is written by the Lease's current holder),
 * every document of every slice written at least once across any crashes and takeovers, and
 * finalize only after every slice is Done, all under ONE point in time: a holder that finds the
 * PIT gone releases its slice as PitLost, and only the planner opens the next generation and
 * replans every slice of an older one, finished ones included (planner::follow_generation).
 * Variants that must FAIL (scripts/check-model.sh): -DNOFENCE (bulks without the gate),
 * -DREADCURSOR (checkpoint the read cursor instead of the durable one), -DEARLY (finalize when
 * one slice is done), -DNOREGEN (after a lost PIT, replan only the slice that noticed).
 */

#ifndef S
#define S 2          /* slices */
#endif
#ifndef W
#define W 2          /* workers (ids 1..W) */
#endif
#define PAGES 2      /* pages per slice */
#define MAXCRASH 2   /* crashes / pauses past the Lease in one run */
#ifndef MAXLOSS
#define MAXLOSS 1    /* points in time lost in one run */
#endif

mtype = { Pending, Running, Done, PitLost };

typedef LeaseT {
  byte holder;       /* 0: nobody */
  byte rv;           /* resourceVersion */
  mtype state;
  byte cp;           /* checkpoint: pages before it are in the destination */
  bool expired;      /* a successor has seen the record unchanged for a lease duration */
  byte lgen;         /* reindex.dev/pit-generation: the point in time the slice reads */
};
typedef Row { bool b[S] };
typedef Pages { byte p[PAGES] };

LeaseT lease[S];
Row budget[W + 1];   /* budget[w].b[s]: w may write for s */
Pages written[S];    /* the destination: 1 + the PIT generation page p of slice s was last
                        written under (0: never). Elasticsearch slices a PIT by Lucene doc id:
                        "page p of slice s" is other documents in another point in time, so
                        only writes under the final generation count. */
byte gen = 0;        /* the planner's point in time */
byte losses = 0;
byte crashes = 0;
bool finalized = false;

#define CLAIMABLE(i) (lease[i].state != Done && lease[i].state != PitLost && (lease[i].holder == 0 || lease[i].expired))
#define EXPIRES(i) (lease[i].holder != 0 && !budget[lease[i].holder].b[i] && !lease[i].expired && lease[i].state != Done)

/* SliceHold::claim: a conditional write; the claimer's budget starts. */
inline CLAIM() {
  lease[s].holder = w; lease[s].rv++; lease[s].expired = false;
  lease[s].state = Running; myrv = lease[s].rv; budget[w].b[s] = true; mygen = lease[s].lgen;
  pos = lease[s].cp; rd = pos;
  for (v : 1 .. W) { assert(v == w || !budget[v].b[s]) }
}

#define ALLDONE (lease[0].state == Done && lease[S - 1].state == Done && (S < 3 || lease[1].state == Done))
#define ANYDONE (lease[0].state == Done || lease[S - 1].state == Done)
#define ONEGEN (lease[0].lgen == gen && lease[S - 1].lgen == gen && (S < 3 || lease[1].lgen == gen))
#define LOST(i) (lease[i].state == PitLost && lease[i].lgen == gen)

/* planner::follow_generation: every Lease of an older generation, finished ones included, is
   replanned under the new point in time; holder and renew time kept (its holder's next renewal
   fails and a successor waits for expiry). NOREGEN replans only the slice that noticed. */
#ifdef NOREGEN
#define STALE(i) (lease[i].lgen < gen && lease[i].state == PitLost)
#else
#define STALE(i) (lease[i].lgen < gen)
#endif
inline REPLAN(i) {
  lease[i].state = Pending; lease[i].cp = 0; lease[i].lgen = gen; lease[i].rv++
}

proctype Worker(byte w) {
  byte s, rd, pos, myrv, durable, v, mygen;
Claiming:
  do
  :: finalized -> goto Out
  :: atomic { CLAIMABLE(0) -> s = 0; CLAIM() }; goto Copying
  :: atomic { CLAIMABLE(1) -> s = 1; CLAIM() }; goto Copying
#if S > 2
  :: atomic { CLAIMABLE(2) -> s = 2; CLAIM() }; goto Copying
#endif
  od;
Copying:
  do
  /* read a page (the cursor moves before its bulk is written: pipelining) */
  :: atomic { rd == pos && rd < PAGES -> rd++ }
  /* a bulk passes the gate and is written */
#ifdef NOFENCE
  :: atomic { pos < rd ->
#else
  :: atomic { budget[w].b[s] && pos < rd ->
#endif
       assert(lease[s].holder == w);
       written[s].p[pos] = mygen + 1; pos++ }
  /* renew with a checkpoint: the durable point (everything before it written). A renewal
     that changes nothing is a stutter step of this model (it only moves the budget), so only
     renewals that move the checkpoint are explored; that keeps rv bounded. */
#ifdef READCURSOR
  :: atomic { budget[w].b[s] && lease[s].rv == myrv && lease[s].cp != rd ->
       durable = rd;
#else
  :: atomic { budget[w].b[s] && lease[s].rv == myrv && lease[s].cp != pos ->
       durable = pos;
#endif
       lease[s].cp = durable; lease[s].rv++; myrv = lease[s].rv }
  /* renewal refused (409: somebody else wrote it): lost */
  :: atomic { budget[w].b[s] && lease[s].rv != myrv -> budget[w].b[s] = false }; goto Claiming
  /* the budget lapses (paused, API server slow, crashed): the process may run on for a while
     before its renew loop notices */
  :: atomic { crashes < MAXCRASH && budget[w].b[s] -> crashes++; budget[w].b[s] = false }
  /* a search finds the point in time gone: released as PitLost, never renewed here */
  :: atomic { losses < MAXLOSS && budget[w].b[s] && lease[s].rv == myrv && lease[s].lgen == gen ->
       losses++; budget[w].b[s] = false; lease[s].state = PitLost; lease[s].holder = 0;
       lease[s].rv++ }
     goto Claiming
  /* the renew loop notices the lapse: the slice is given up (the engine stops) */
  :: !budget[w].b[s] -> goto Claiming
  /* done: every page written; released as Done */
  :: atomic { budget[w].b[s] && pos == PAGES && lease[s].rv == myrv ->
       budget[w].b[s] = false; lease[s].state = Done; lease[s].holder = 0;
       lease[s].cp = pos; lease[s].rv++ }
     goto Claiming
  od;
Out:
  skip
}

/* A successor's view: the holder's record unchanged for a lease duration. */
proctype Clock() {
  do
  :: atomic { EXPIRES(0) -> lease[0].expired = true }
  :: atomic { EXPIRES(1) -> lease[1].expired = true }
#if S > 2
  :: atomic { EXPIRES(2) -> lease[2].expired = true }
#endif
  :: finalized -> break
  od
}

proctype Leader() {
  byte s, p;
Following:
  do
  :: atomic { (LOST(0) || LOST(S - 1) || (S > 2 && LOST(1))) -> gen++ }
  :: atomic { STALE(0) -> REPLAN(0) }
  :: atomic { STALE(S - 1) -> REPLAN(S - 1) }
#if S > 2
  :: atomic { STALE(1) -> REPLAN(1) }
#endif
#ifdef EARLY
  :: ANYDONE -> break
#elif defined(NOREGEN)
  :: ALLDONE -> break
#else
  :: ALLDONE && ONEGEN -> break
#endif
  od;
Finalizing:
  for (s : 0 .. S - 1) {
    assert(lease[s].state == Done);
    for (p : 0 .. PAGES - 1) { assert(written[s].p[p] == gen + 1) }
  }
  finalized = true
}

init {
  byte s, w;
  atomic {
    for (s : 0 .. S - 1) { lease[s].state = Pending }
    run Leader();
    run Clock();
    for (w : 1 .. W) { run Worker(w) }
  }
}
