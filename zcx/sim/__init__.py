"""Meter gateway simulator: realistic 30-minute PQ1..PQ4 for every member kind of the patent.

- `sites`: real Japanese sites (coordinates, climate normals, grid zone);
- `weather`: day-to-day sky states and temperatures, seeded;
- `pv`: pvlib clear-sky irradiance -> plane of array -> DC -> AC, per 30-minute slot;
- `loads`: daily and weekly load shapes per member profile, with weekends and Japanese holidays;
- `battery`: the documented dispatch rules;
- `community`: a seeded mix of members across all kinds;
- `simulate`: the energy-balanced readings (PQ1..PQ4 plus battery charge/discharge and state);
- `gateway`: delivery over HTTP to the oracle (one token per gateway, accelerated time) and CSV.

Nothing runs at import time; every random figure comes from a seed.
"""
