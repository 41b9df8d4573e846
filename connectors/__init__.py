"""Everything that speaks a foreign format and turns it into canonical sightings on Kafka."""
