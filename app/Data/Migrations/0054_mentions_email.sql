-- Whether a text (a JSON body, as text) names an email address as a whole, case-insensitively: "an@x.com" is not found in
-- "joan@x.com" nor in "an@x.com.au", and the address's own characters are taken literally. Why not LIKE '%' || email || '%':
-- that is a substring match in which '_' matches any character, so erasing one customer's email erased other customers'
-- staged backfill lines, delivery bodies and Stripe events whose addresses contained it.
CREATE FUNCTION mentions_email(body text, email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(body) ~ ('(^|[^a-z0-9._%+-])' || regexp_replace(lower(email), '([^a-z0-9@])', '\\\1', 'g')
                          || '($|[^a-z0-9.-]|\.($|[^a-z0-9-]))')
$$;
