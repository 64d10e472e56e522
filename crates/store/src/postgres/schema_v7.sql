-- Room on each page for a row's next versions. A Map entry or an object's row written many times
-- a second (a Proxy session, a counter, a Map's own row) then keeps its new version on its page,
-- a HOT update that adds no index entry, and the versions it leaves are pruned as the page is
-- read. Full pages sent each update to another page, with a new index entry, and the dead
-- versions piled up until autovacuum's next round: reads by key walked them. Pages written
-- before keep their rows until those move.
ALTER TABLE items SET (fillfactor = 80);
ALTER TABLE objects SET (fillfactor = 80);
