-- A view that is not part of the dbt project but reads one of its models (as reports, apps
-- or other teams do): the Postgres connection catalogs it, downstream of the dbt asset.
-- It reads the incremental model: dbt replaces table and view models with DROP ... CASCADE,
-- which would drop this view on the next run.
create schema if not exists reporting;

create or replace view reporting.busiest_days as
select rental_day, rentals, customers
from analytics.daily_rentals
order by rentals desc
limit 30;

grant usage on schema reporting to dagster_reader;
grant select on reporting.busiest_days to dagster_reader;
