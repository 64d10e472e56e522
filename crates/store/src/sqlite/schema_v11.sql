-- Every 32nd event of an object is marked by the writer itself, which knows the stream's length
-- from the row it read. The trigger made every update of an object's row a statement with a
-- journal of its own (a copy of each page it touched), about a tenth of an update's work.
DROP TRIGGER mark_every_32nd_event;
