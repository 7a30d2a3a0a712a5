// Package engine runs projectors without knowing any read model: the
// Runtime applies batches of one partition's events in one PostgreSQL
// transaction together with the checkpoint; the Supervisor runs a Runtime
// for every registered generation; Versions is the blue/green registry
// (building, live, standby, dropped) and Rebuilder and Admin drive
// rebuilds, switches, rollbacks and drops; dead letters park a user's
// events behind a poison event; the checkpoint feed and Consistency end a
// read's wait for a consistency token at the projector's commit; AsOf
// builds a projection as it was at a point in time.
//
// Read models (projections/users, projections/metrics,
// projections/settings) plug in as Projectors through a Catalog; they
// depend on the engine, never the other way round, so a new read model
// changes no line here.
package engine
