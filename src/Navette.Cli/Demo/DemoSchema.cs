namespace Navette.Cli.Demo;

/// <summary>The demo's shop: a few related tables with the kinds of values real schemas hold.</summary>
internal static class DemoSchema
{
    public const string Tables = """
        CREATE TYPE public.order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
        CREATE TABLE public.customers (
            id         bigint PRIMARY KEY,
            name       text NOT NULL,
            email      text,
            balance    numeric(12,2) NOT NULL DEFAULT 0,
            tags       text[],
            updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE public.products (
            sku        text PRIMARY KEY,
            title      text NOT NULL,
            price      numeric(10,2) NOT NULL,
            attributes jsonb);
        CREATE TABLE public.orders (
            id          bigserial PRIMARY KEY,
            customer_id bigint NOT NULL REFERENCES public.customers(id),
            sku         text NOT NULL REFERENCES public.products(sku),
            quantity    int NOT NULL,
            status      public.order_status NOT NULL DEFAULT 'new',
            placed_at   timestamptz NOT NULL DEFAULT now(),
            note        text);
        CREATE TABLE public."Audit Trail" (
            at    timestamptz NOT NULL,
            actor text NOT NULL,
            what  text NOT NULL);
        ALTER TABLE public."Audit Trail" REPLICA IDENTITY FULL;
        """;

    public const string Seed = """
        INSERT INTO public.customers (id, name, email, balance, tags)
        SELECT g, 'Customer ' || g, 'c' || g || '@example.com', (g % 1000) * 1.25, ARRAY['tier' || (g % 3)]
          FROM generate_series(1, 20000) g;
        INSERT INTO public.products (sku, title, price, attributes)
        SELECT 'SKU-' || g, 'Product ' || g, 1 + (g % 500) * 0.5, jsonb_build_object('colour', (ARRAY['red','green','blue'])[1 + g % 3], 'weight', g % 40)
          FROM generate_series(1, 2000) g;
        INSERT INTO public.orders (customer_id, sku, quantity, status, note)
        SELECT 1 + (g * 7) % 20000, 'SKU-' || (1 + g % 2000), 1 + g % 5, (ARRAY['new','paid','shipped']::public.order_status[])[1 + g % 3], NULL
          FROM generate_series(1, 50000) g;
        """;

    /// <summary>One shop transaction: an order, a balance change, sometimes a status change, a cancellation, an audit line.</summary>
    public const string Transaction = """
        WITH c AS (SELECT (1 + floor(random() * 20000))::bigint AS id),
             o AS (INSERT INTO public.orders (customer_id, sku, quantity, note)
                   SELECT c.id, 'SKU-' || (1 + floor(random() * 2000))::int, 1 + floor(random() * 5)::int,
                          CASE WHEN random() < 0.1 THEN 'gift: ' || md5(random()::text) END
                     FROM c RETURNING customer_id, quantity)
        UPDATE public.customers SET balance = balance - o.quantity, updated_at = now()
          FROM o WHERE customers.id = o.customer_id;
        UPDATE public.orders SET status = 'paid' WHERE id = (SELECT max(id) - floor(random() * 100)::bigint FROM public.orders) AND status = 'new';
        DELETE FROM public.orders WHERE id = (SELECT min(id) + floor(random() * 1000)::bigint FROM public.orders) AND status = 'shipped';
        INSERT INTO public."Audit Trail" VALUES (now(), current_user, 'order placed');
        """;

    public static readonly string[] TableNames = ["public.customers", "public.products", "public.orders", "public.\"Audit Trail\""];
}
